from pathlib import Path

import pytest

from quant.universe import (
    AssetClass,
    InvalidSymbolError,
    UniverseError,
    load_universe,
    symbol_slug,
    universe_from_entries,
    validate_symbol,
)


def test_default_universe_is_the_26_symbols_of_the_design():
    universe = load_universe()
    assert len(universe) == 26
    indices = [i.symbol for i in universe.of_class(AssetClass.INDEX)]
    assert indices == ["^GSPC", "^IXIC", "^DJI", "^NSEI", "^NSEBANK", "^VIX"]
    equities = universe.of_class(AssetClass.EQUITY)
    assert len(equities) == 20
    assert {i.sector for i in equities} == {
        "technology",
        "financials",
        "healthcare",
        "consumer",
        "energy",
    }
    assert universe.get("^NSEI").calendar == "NSE"
    assert universe.get("AAPL").calendar == "NYSE"


@pytest.mark.parametrize("symbol", ["AAPL", "^GSPC", "BRK-B", "RDS.A", "EURUSD=X", "A", "^NSEBANK"])
def test_yahoo_style_symbols_are_accepted(symbol):
    assert validate_symbol(symbol) == symbol


@pytest.mark.parametrize(
    "symbol",
    [
        "../../etc/passwd",
        "..",
        ".",
        "",
        "AAPL/../x",
        "a b",
        "AAPL;DROP",
        "^",
        "A" * 16,
        "x'--",
        "-A",
        None,
        42,
    ],
)
def test_anything_else_is_refused_before_it_reaches_a_path(symbol):
    with pytest.raises(InvalidSymbolError, match="symbol"):
        validate_symbol(symbol)


def test_slug_strips_the_index_caret():
    assert symbol_slug("^GSPC") == "GSPC"
    assert symbol_slug("BRK-B") == "BRK-B"
    with pytest.raises(InvalidSymbolError):
        symbol_slug("../../etc/passwd")


def test_symbols_sharing_a_file_name_are_rejected():
    entries = [
        {"symbol": "^ABC", "asset_class": "index", "calendar": "NYSE"},
        {"symbol": "ABC", "asset_class": "equity", "calendar": "NYSE"},
    ]
    with pytest.raises(UniverseError, match="share the file name 'ABC'"):
        universe_from_entries(entries)


def test_duplicates_bad_classes_and_bad_symbols_name_the_entry():
    with pytest.raises(UniverseError, match="listed twice"):
        universe_from_entries([{"symbol": "A", "asset_class": "equity", "calendar": "NYSE"}] * 2)
    with pytest.raises(UniverseError, match=r"entry 1 \(A\): asset_class 'bond'"):
        universe_from_entries([{"symbol": "A", "asset_class": "bond", "calendar": "NYSE"}])
    with pytest.raises(UniverseError, match="entry 2: invalid symbol"):
        universe_from_entries(
            [
                {"symbol": "A", "asset_class": "equity", "calendar": "NYSE"},
                {"symbol": "../x", "asset_class": "equity", "calendar": "NYSE"},
            ]
        )
    with pytest.raises(UniverseError, match="lacks calendar"):
        universe_from_entries([{"symbol": "A", "asset_class": "equity"}])


def test_market_universe_env_var_points_at_a_user_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "instruments:\n"
        "  - {symbol: SPY, asset_class: equity, calendar: NYSE, sector: etf}\n"
        "  - {symbol: '^FTSE', asset_class: index, calendar: LSE}\n"
    )
    monkeypatch.setenv("MARKET_UNIVERSE", str(path))
    universe = load_universe()
    assert universe.symbols == ["SPY", "^FTSE"]
    assert universe.get("^FTSE").is_index


def test_malformed_universe_files_give_clear_errors(tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UniverseError, match="not found"):
        load_universe(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("symbols: [AAPL]\n")
    with pytest.raises(UniverseError, match="list under 'instruments'"):
        load_universe(bad)


def test_unknown_symbol_lookup_is_a_key_error_naming_it():
    with pytest.raises(KeyError, match="TSLA"):
        load_universe().get("TSLA")
