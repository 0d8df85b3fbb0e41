"""Interface texts of the related pages in English and Chinese."""

EN: dict[str, str] = {}
ZH: dict[str, str] = {}
