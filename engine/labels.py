"""Bilingual labels shown to users."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

LABEL_MAX = 100
HELP_MAX = 500


class Label(BaseModel):
    """A name shown to users, in Chinese and English."""

    model_config = ConfigDict(extra="forbid")

    zh: str = Field(min_length=1, max_length=LABEL_MAX, description="Chinese label")
    en: str = Field(min_length=1, max_length=LABEL_MAX, description="English label")


class HelpText(BaseModel):
    """Help text under a field, in Chinese and English (either may be empty)."""

    model_config = ConfigDict(extra="forbid")

    zh: str = Field(default="", max_length=HELP_MAX)
    en: str = Field(default="", max_length=HELP_MAX)
