"""Interface texts of the list pages in English and Chinese."""

EN: dict[str, str] = {}
ZH: dict[str, str] = {}
