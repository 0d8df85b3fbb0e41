"""Interface texts of the approvals pages in English and Chinese."""

EN: dict[str, str] = {}
ZH: dict[str, str] = {}
