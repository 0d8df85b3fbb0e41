"""Interface texts of the related lists and attachments of a record page, in English and Chinese."""

EN: dict[str, str] = {
    "related_new": "New",
    "related_none": "None yet.",
    "related_all": "Show all {n}",
    "related_fewer": "Show fewer",
    "related_open_list": "Open as a list",
    "attachments": "Attachments",
}
ZH: dict[str, str] = {
    "related_new": "新建",
    "related_none": "暂无。",
    "related_all": "查看全部 {n} 条",
    "related_fewer": "收起",
    "related_open_list": "在列表中打开",
    "attachments": "附件",
}
