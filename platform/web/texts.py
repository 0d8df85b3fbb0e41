"""Interface texts of the staff web app in English and Chinese, and the viewer's language.

The language is the ``formloom_lang`` cookie (set by the language switch), else the
browser's ``Accept-Language``. Labels of entities and fields come from the metadata
in the same language; these are the app's own words.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from formloom.platform.auth_deps import language_of
from formloom.platform.web import texts_approvals, texts_boards, texts_lists, texts_related

LANG_COOKIE = "formloom_lang"
LANGUAGES = ("zh", "en")

_EN = {
    "app": "formloom",
    "login_title": "Sign in",
    "login": "Login",
    "password": "Password",
    "sign_in": "Sign in",
    "sign_out": "Sign out",
    "language": "Language",
    "entities": "Records",
    "no_entities": "Your roles let you read no records in this environment.",
    "welcome": "Choose what to work on from the menu.",
    "search": "Search",
    "search_placeholder": "Search…",
    "new": "New",
    "edit": "Edit",
    "next_page": "Next page",
    "first_page": "First page",
    "no_records": "No records found.",
    "total": "{n} records",
    "history": "History",
    "no_history": "No history yet.",
    "action_create": "Created",
    "action_update": "Changed",
    "action_delete": "Deleted",
    "action_restore": "Restored",
    "action_purge": "Purged",
    "action_transfer": "Owner transferred",
    "by": "by user",
    "back_to_list": "Back to the list",
    "cancel": "Cancel",
    "new_record": "New {entity}",
    "edit_record": "Edit {entity} #{id}",
    "record": "{entity} #{id}",
    "stale": (
        "Someone else saved this record while you were editing it (it is now version "
        "{version}). Your input is kept below; the values they saved are listed here. "
        "Check them and save again to overwrite, or cancel to keep theirs."
    ),
    "their_values": "Values now saved",
    "duplicates_found": (
        "Records like this one already exist (listed above). Check them, then save anyway "
        "if this is a different record."
    ),
    "save_anyway": "Save anyway",
    "error_title": "Something went wrong",
    "menu": "Menu",
    "sort_by": "Sort by {field}",
    "csrf_login": "The sign-in form expired; please try again.",
    "id": "ID",
}
_ZH = {
    "app": "formloom",
    "login_title": "登录",
    "login": "登录名",
    "password": "密码",
    "sign_in": "登录",
    "sign_out": "退出登录",
    "language": "语言",
    "entities": "记录",
    "no_entities": "您的角色在此环境中没有可查看的记录。",
    "welcome": "请从菜单中选择要处理的内容。",
    "search": "搜索",
    "search_placeholder": "搜索…",
    "new": "新建",
    "edit": "编辑",
    "next_page": "下一页",
    "first_page": "第一页",
    "no_records": "没有找到记录。",
    "total": "共 {n} 条记录",
    "history": "历史记录",
    "no_history": "暂无历史记录。",
    "action_create": "创建",
    "action_update": "修改",
    "action_delete": "删除",
    "action_restore": "恢复",
    "action_purge": "彻底删除",
    "action_transfer": "转移负责人",
    "by": "操作用户",
    "back_to_list": "返回列表",
    "cancel": "取消",
    "new_record": "新建{entity}",
    "edit_record": "编辑{entity} #{id}",
    "record": "{entity} #{id}",
    "stale": (
        "在您编辑期间，其他人保存了这条记录（当前版本 {version}）。您的输入已保留在下方；"
        "他人保存的值列在这里。请核对后再次保存以覆盖，或取消以保留他人的修改。"
    ),
    "their_values": "当前已保存的值",
    "duplicates_found": (
        "已存在与此相似的记录（见上方列表）。请先核对；若确为不同记录，可仍然保存。"
    ),
    "save_anyway": "仍然保存",
    "error_title": "出错了",
    "menu": "菜单",
    "sort_by": "按{field}排序",
    "csrf_login": "登录表单已过期，请重试。",
    "id": "编号",
}
_AREAS = (texts_lists, texts_approvals, texts_boards, texts_related)
TEXTS: Mapping[str, Mapping[str, str]] = {
    "en": _EN | {k: v for area in _AREAS for k, v in area.EN.items()},
    "zh": _ZH | {k: v for area in _AREAS for k, v in area.ZH.items()},
}


def request_language(request: Request) -> str:
    """``zh`` or ``en``: the language cookie, else the browser's preference."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return language_of(request.headers.get("accept-language"))


def texts_for(lang: str) -> Mapping[str, str]:
    return TEXTS["zh" if lang == "zh" else "en"]
