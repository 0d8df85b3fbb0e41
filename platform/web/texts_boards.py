"""Interface texts of the boards pages in English and Chinese."""

EN: dict[str, str] = {
    "board_title": "{entity} board",
    "board_group_by": "Columns by",
    "board_show": "Show",
    "board_list_view": "List view",
    "board_no_value": "No {field}",
    "board_count": "{n} records",
    "board_count_one": "1 record",
    "board_total": "{field} total: {total}",
    "board_more": "Show all {n} in the list",
    "board_empty": "No records.",
    "board_move_to": "Move to",
    "board_move": "Move",
    "board_drag_hint": (
        "Drag a card to another column, or use its “Move to” list, to change its {field}."
    ),
    "board_moved": "“{title}” moved to {column}.",
    "board_refused": "“{title}” was not moved: {reason}",
    "board_stale": (
        "“{title}” was changed by someone else after the board was loaded; it was not "
        "moved. The board now shows it as it is: move it again if you still want to."
    ),
    "board_gone": "That card no longer exists or you may no longer see it; the board was reloaded.",
    "board_failed": "The move could not be saved: {reason}. The board was reloaded.",
    "board_no_field": (
        "{entity} has no single-choice field you may see, so there is nothing to make "
        "columns from. A designer can add a single_select field (such as a stage) to the entity."
    ),
    "board_bad_field": (
        "`{field}` is not a single-choice field of {entity} you may see; choose one of: {choices}."
    ),
    "board_bad_move": "The move is incomplete: the card's id and version are needed.",
    "board_saving": "Saving…",
}
ZH: dict[str, str] = {
    "board_title": "{entity}看板",
    "board_group_by": "分列字段",
    "board_show": "显示",
    "board_list_view": "列表视图",
    "board_no_value": "无{field}",
    "board_count": "{n} 条记录",
    "board_count_one": "1 条记录",
    "board_total": "{field}合计：{total}",
    "board_more": "在列表中查看全部 {n} 条",
    "board_empty": "没有记录。",
    "board_move_to": "移动到",
    "board_move": "移动",
    "board_drag_hint": "把卡片拖到其他列，或使用卡片上的“移动到”列表，即可修改其{field}。",
    "board_moved": "已将“{title}”移动到{column}。",
    "board_refused": "“{title}”未能移动：{reason}",
    "board_stale": (
        "看板加载后，“{title}”已被他人修改，本次未移动。看板已显示其最新状态；如仍需移动，请再次移动。"
    ),
    "board_gone": "该卡片已不存在或您已无权查看；看板已重新加载。",
    "board_failed": "移动未能保存：{reason}。看板已重新加载。",
    "board_no_field": (
        "{entity}没有您可查看的单选字段，无法生成看板列。设计人员可以为该实体添加单选字段（例如阶段）。"
    ),
    "board_bad_field": "`{field}` 不是您可查看的{entity}单选字段；请从以下字段中选择：{choices}。",
    "board_bad_move": "移动请求不完整：需要卡片的编号和版本。",
    "board_saving": "正在保存…",
}
