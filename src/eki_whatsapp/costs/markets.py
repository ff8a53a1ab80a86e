"""Which pricing market a user is in: the country of the number's calling code."""

from __future__ import annotations

__all__ = ["country_of"]

# Country calling code → ISO 3166 country, longest prefix first when matching.
_CALLING_CODES: dict[str, str] = {
    "1": "US",
    "7": "RU",
    "20": "EG",
    "27": "ZA",
    "30": "GR",
    "31": "NL",
    "32": "BE",
    "33": "FR",
    "34": "ES",
    "39": "IT",
    "40": "RO",
    "41": "CH",
    "43": "AT",
    "44": "GB",
    "45": "DK",
    "46": "SE",
    "47": "NO",
    "48": "PL",
    "49": "DE",
    "51": "PE",
    "52": "MX",
    "54": "AR",
    "55": "BR",
    "56": "CL",
    "57": "CO",
    "58": "VE",
    "60": "MY",
    "61": "AU",
    "62": "ID",
    "63": "PH",
    "64": "NZ",
    "65": "SG",
    "66": "TH",
    "81": "JP",
    "82": "KR",
    "84": "VN",
    "86": "CN",
    "90": "TR",
    "91": "IN",
    "92": "PK",
    "212": "MA",
    "233": "GH",
    "234": "NG",
    "254": "KE",
    "351": "PT",
    "353": "IE",
    "358": "FI",
    "380": "UA",
    "502": "GT",
    "506": "CR",
    "507": "PA",
    "591": "BO",
    "593": "EC",
    "595": "PY",
    "598": "UY",
    "966": "SA",
    "971": "AE",
    "972": "IL",
}


def country_of(user: str | None) -> str | None:
    """ISO country of a user key: from the calling code of phone digits, or the ``CC.`` prefix
    of a business-scoped user id (``US.1349...``). ``None`` when it cannot be told."""
    if not user:
        return None
    if user.isdigit():
        for length in (3, 2, 1):
            country = _CALLING_CODES.get(user[:length])
            if country is not None:
                return country
        return None
    prefix, dot, _ = user.partition(".")
    if dot and len(prefix) == 2 and prefix.isalpha():
        return prefix.upper()
    return None
