"""The closed code lists a quote uses: ISO 4217 currencies with their minor units, the eleven
Incoterms 2020 rules, and the units of measure a line may be counted in. None of these is ever
translated: readers see the code."""

from __future__ import annotations

# ISO 4217 active currency codes (list of 2025, precious metals, the SDR and test codes left
# out) -> minor units (digits after the decimal point). Amounts are rounded to these.
_MINOR_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_MINOR_3 = "BHD IQD JOD KWD LYD OMR TND"
_MINOR_4 = "CLF UYW"
_MINOR_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD "
    "FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD "
    "KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD "
    "NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP "
    "SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED "
    "VES WST XCD XCG YER ZAR ZMW ZWG"
)
CURRENCIES: dict[str, int] = {
    code: digits
    for digits, codes in ((0, _MINOR_0), (2, _MINOR_2), (3, _MINOR_3), (4, _MINOR_4))
    for code in codes.split()
}

# Incoterms 2020 (ICC): any mode of transport, then sea and inland waterway only.
INCOTERMS: tuple[str, ...] = (
    "EXW", "FCA", "CPT", "CIP", "DAP", "DPU", "DDP",  # any mode
    "FAS", "FOB", "CFR", "CIF",  # sea and inland waterway
)  # fmt: skip

# Units of measure a quantity is counted in (shown as these codes in every language).
UNITS: tuple[str, ...] = (
    "pcs", "set", "pair", "dozen", "box", "carton", "bag", "roll", "sheet", "pallet",
    "kg", "g", "t", "lb",
    "m", "cm", "mm", "ft", "in", "m2", "m3",
    "l", "ml",
    "20ft", "40ft", "40hq",
)  # fmt: skip
