"""The default universe (83 liquid US stocks with the sector and industry the sample market uses), and
the one rule for what a symbol name may be, since symbols become file names (`<SYMBOL>.csv`).
"""

from __future__ import annotations

import re
from typing import NamedTuple

# An upper-case ticker: a letter or digit, then letters, digits, '.' or '-' (BRK-B, BRK.B), 15 at most.
SYMBOL_PATTERN = r"[A-Z0-9][A-Z0-9.\-]{0,14}"


def symbol_problem(symbol: object) -> str | None:
    """Why `symbol` cannot be a ticker (and so must never become part of a path), or None when it can."""
    if not isinstance(symbol, str):
        return f"symbol {symbol!r} is not text"
    if "\x00" in symbol:
        return f"symbol {symbol!r} contains a NUL byte"
    if "/" in symbol or "\\" in symbol:
        return f"symbol {symbol!r} contains a path separator"
    if ".." in symbol:
        return f"symbol {symbol!r} contains '..'"
    if not re.fullmatch(SYMBOL_PATTERN, symbol):
        return (
            f"symbol {symbol!r} is not an upper-case ticker (a letter or digit, then letters, digits, "
            "'.' or '-', at most 15 characters)"
        )
    return None


class Listing(NamedTuple):
    """What the platform knows about a symbol before any source answers."""

    name: str
    sector: str
    industry: str


DEFAULT_UNIVERSE: dict[str, Listing] = {
    "AAPL": Listing("Apple Inc.", "Technology", "Consumer Electronics"),
    "MSFT": Listing("Microsoft Corp.", "Technology", "Software"),
    "NVDA": Listing("NVIDIA Corp.", "Technology", "Semiconductors"),
    "AVGO": Listing("Broadcom Inc.", "Technology", "Semiconductors"),
    "ORCL": Listing("Oracle Corp.", "Technology", "Software"),
    "CRM": Listing("Salesforce Inc.", "Technology", "Software"),
    "ADBE": Listing("Adobe Inc.", "Technology", "Software"),
    "AMD": Listing("Advanced Micro Devices Inc.", "Technology", "Semiconductors"),
    "INTC": Listing("Intel Corp.", "Technology", "Semiconductors"),
    "CSCO": Listing("Cisco Systems Inc.", "Technology", "Networking"),
    "QCOM": Listing("Qualcomm Inc.", "Technology", "Semiconductors"),
    "TXN": Listing("Texas Instruments Inc.", "Technology", "Semiconductors"),
    "IBM": Listing("International Business Machines Corp.", "Technology", "IT Services"),
    "AMAT": Listing("Applied Materials Inc.", "Technology", "Semiconductor Equipment"),
    "MU": Listing("Micron Technology Inc.", "Technology", "Semiconductors"),
    "GOOGL": Listing("Alphabet Inc.", "Communication Services", "Internet Content"),
    "META": Listing("Meta Platforms Inc.", "Communication Services", "Internet Content"),
    "NFLX": Listing("Netflix Inc.", "Communication Services", "Entertainment"),
    "DIS": Listing("Walt Disney Co.", "Communication Services", "Entertainment"),
    "CMCSA": Listing("Comcast Corp.", "Communication Services", "Telecom Services"),
    "VZ": Listing("Verizon Communications Inc.", "Communication Services", "Telecom Services"),
    "T": Listing("AT&T Inc.", "Communication Services", "Telecom Services"),
    "TMUS": Listing("T-Mobile US Inc.", "Communication Services", "Telecom Services"),
    "AMZN": Listing("Amazon.com Inc.", "Consumer Discretionary", "Internet Retail"),
    "TSLA": Listing("Tesla Inc.", "Consumer Discretionary", "Automobiles"),
    "HD": Listing("Home Depot Inc.", "Consumer Discretionary", "Home Improvement Retail"),
    "MCD": Listing("McDonald's Corp.", "Consumer Discretionary", "Restaurants"),
    "NKE": Listing("Nike Inc.", "Consumer Discretionary", "Footwear"),
    "LOW": Listing("Lowe's Companies Inc.", "Consumer Discretionary", "Home Improvement Retail"),
    "SBUX": Listing("Starbucks Corp.", "Consumer Discretionary", "Restaurants"),
    "BKNG": Listing("Booking Holdings Inc.", "Consumer Discretionary", "Travel Services"),
    "TJX": Listing("TJX Companies Inc.", "Consumer Discretionary", "Apparel Retail"),
    "GM": Listing("General Motors Co.", "Consumer Discretionary", "Automobiles"),
    "F": Listing("Ford Motor Co.", "Consumer Discretionary", "Automobiles"),
    "WMT": Listing("Walmart Inc.", "Consumer Staples", "Discount Stores"),
    "PG": Listing("Procter & Gamble Co.", "Consumer Staples", "Household Products"),
    "KO": Listing("Coca-Cola Co.", "Consumer Staples", "Beverages"),
    "PEP": Listing("PepsiCo Inc.", "Consumer Staples", "Beverages"),
    "COST": Listing("Costco Wholesale Corp.", "Consumer Staples", "Discount Stores"),
    "PM": Listing("Philip Morris International Inc.", "Consumer Staples", "Tobacco"),
    "MO": Listing("Altria Group Inc.", "Consumer Staples", "Tobacco"),
    "MDLZ": Listing("Mondelez International Inc.", "Consumer Staples", "Packaged Foods"),
    "CL": Listing("Colgate-Palmolive Co.", "Consumer Staples", "Household Products"),
    "JPM": Listing("JPMorgan Chase & Co.", "Financials", "Banks"),
    "BAC": Listing("Bank of America Corp.", "Financials", "Banks"),
    "WFC": Listing("Wells Fargo & Co.", "Financials", "Banks"),
    "C": Listing("Citigroup Inc.", "Financials", "Banks"),
    "GS": Listing("Goldman Sachs Group Inc.", "Financials", "Capital Markets"),
    "MS": Listing("Morgan Stanley", "Financials", "Capital Markets"),
    "BLK": Listing("BlackRock Inc.", "Financials", "Asset Management"),
    "SCHW": Listing("Charles Schwab Corp.", "Financials", "Capital Markets"),
    "AXP": Listing("American Express Co.", "Financials", "Credit Services"),
    "V": Listing("Visa Inc.", "Financials", "Credit Services"),
    "MA": Listing("Mastercard Inc.", "Financials", "Credit Services"),
    "BRK-B": Listing("Berkshire Hathaway Inc.", "Financials", "Insurance"),
    "JNJ": Listing("Johnson & Johnson", "Health Care", "Pharmaceuticals"),
    "UNH": Listing("UnitedHealth Group Inc.", "Health Care", "Managed Health Care"),
    "LLY": Listing("Eli Lilly & Co.", "Health Care", "Pharmaceuticals"),
    "PFE": Listing("Pfizer Inc.", "Health Care", "Pharmaceuticals"),
    "MRK": Listing("Merck & Co. Inc.", "Health Care", "Pharmaceuticals"),
    "ABBV": Listing("AbbVie Inc.", "Health Care", "Pharmaceuticals"),
    "TMO": Listing("Thermo Fisher Scientific Inc.", "Health Care", "Life Sciences Tools"),
    "ABT": Listing("Abbott Laboratories", "Health Care", "Medical Devices"),
    "DHR": Listing("Danaher Corp.", "Health Care", "Life Sciences Tools"),
    "BMY": Listing("Bristol-Myers Squibb Co.", "Health Care", "Pharmaceuticals"),
    "AMGN": Listing("Amgen Inc.", "Health Care", "Biotechnology"),
    "GILD": Listing("Gilead Sciences Inc.", "Health Care", "Biotechnology"),
    "XOM": Listing("Exxon Mobil Corp.", "Energy", "Oil & Gas Integrated"),
    "CVX": Listing("Chevron Corp.", "Energy", "Oil & Gas Integrated"),
    "COP": Listing("ConocoPhillips", "Energy", "Oil & Gas E&P"),
    "SLB": Listing("Schlumberger Ltd.", "Energy", "Oil & Gas Equipment"),
    "EOG": Listing("EOG Resources Inc.", "Energy", "Oil & Gas E&P"),
    "CAT": Listing("Caterpillar Inc.", "Industrials", "Farm & Heavy Machinery"),
    "BA": Listing("Boeing Co.", "Industrials", "Aerospace & Defense"),
    "HON": Listing("Honeywell International Inc.", "Industrials", "Conglomerates"),
    "UPS": Listing("United Parcel Service Inc.", "Industrials", "Logistics"),
    "GE": Listing("General Electric Co.", "Industrials", "Aerospace & Defense"),
    "RTX": Listing("RTX Corp.", "Industrials", "Aerospace & Defense"),
    "DE": Listing("Deere & Co.", "Industrials", "Farm & Heavy Machinery"),
    "LIN": Listing("Linde plc", "Materials", "Industrial Gases"),
    "NEE": Listing("NextEra Energy Inc.", "Utilities", "Electric Utilities"),
    "DUK": Listing("Duke Energy Corp.", "Utilities", "Electric Utilities"),
    "AMT": Listing("American Tower Corp.", "Real Estate", "REIT Specialty"),
}
