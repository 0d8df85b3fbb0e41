"""Interface texts of the boards pages in English and Chinese."""

EN: dict[str, str] = {}
ZH: dict[str, str] = {}
