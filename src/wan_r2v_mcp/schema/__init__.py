"""The wire types, defined once: what each tool takes (`requests`, `sequences`, `views`) and returns (`views`), on the
limits and ids every one shares (`base`). Import them from here."""

from __future__ import annotations

from .base import (
    EDIT_MODEL_ID,
    I2V_MODEL_ID,
    MODEL_ID,
    OUTPUT_FPS,
    PIXEL_SIZES,
    T2V_MODEL_ID,
    TAKES_MAX,
    TERMINAL,
    WAIT_DEFAULT,
    WAIT_WORDS,
    WAN3_MODEL_ID,
    AspectRatio,
    Handle,
    Limits,
    R2VModel,
    Resolution,
    ShotType,
    Status,
)
from .requests import (
    AnyArgs,
    AnyRequest,
    CastChoice,
    EditArgs,
    EditRequest,
    GenerateArgs,
    GenerateOptions,
    I2VArgs,
    I2VRequest,
    R2VRequest,
    ReferenceQuery,
    ReferenceSet,
    RunOptions,
    T2VArgs,
    T2VRequest,
    Voice,
)
from .sequences import (
    CHARACTER_NAME,
    SHOTS_MAX,
    CharacterList,
    CharacterRef,
    CharacterView,
    ListCharactersArgs,
    PickTakeArgs,
    RedoShotArgs,
    SaveCharacterArgs,
    SequenceArgs,
    Shot,
    ShotView,
    StitchArgs,
    TakeView,
)
from .views import (
    GetTaskArgs,
    ListTasksArgs,
    PromptFinding,
    ReferenceReport,
    ReferenceView,
    RequestSummary,
    TaskError,
    TaskList,
    TaskRef,
    TaskView,
)

__all__ = [
    "AnyArgs", "AnyRequest", "AspectRatio", "CHARACTER_NAME", "CastChoice", "CharacterList", "CharacterRef",
    "CharacterView", "EDIT_MODEL_ID", "EditArgs", "EditRequest", "GenerateArgs", "GenerateOptions", "GetTaskArgs",
    "Handle", "I2VArgs", "I2VRequest", "I2V_MODEL_ID", "Limits", "ListCharactersArgs", "ListTasksArgs", "MODEL_ID",
    "OUTPUT_FPS", "PIXEL_SIZES", "PickTakeArgs", "PromptFinding", "R2VModel", "R2VRequest", "RedoShotArgs",
    "ReferenceQuery", "ReferenceReport", "ReferenceSet", "ReferenceView", "RequestSummary", "Resolution",
    "RunOptions", "SHOTS_MAX", "SaveCharacterArgs", "SequenceArgs", "Shot", "ShotType", "ShotView", "Status",
    "StitchArgs", "T2VArgs", "T2VRequest", "T2V_MODEL_ID", "TAKES_MAX", "TERMINAL", "TakeView", "TaskError",
    "TaskList", "TaskRef", "TaskView", "Voice", "WAIT_DEFAULT", "WAIT_WORDS", "WAN3_MODEL_ID",
]
