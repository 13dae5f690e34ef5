"""What makes two requests "the same" for the duplicate guard: normalised inputs, files by content."""

from __future__ import annotations

import hashlib
import json

from ..references.intake import Intake
from ..schema import AnyRequest, ReferenceSet


def fingerprint(provider: str, model: str, request: AnyRequest, intake: Intake) -> str:
    media = set(ReferenceSet.model_fields) | {"audio", "last_frame", "first_clip", "driving_audio", "video"}
    settings = request.model_dump(mode="json", exclude=media)  # files count by content, below
    settings["prompt"] = " ".join(request.prompt.split())
    refs = []
    for ref in intake.all_references:
        if ref.opened is not None:
            refs.append([ref.label, "sha256", ref.opened.sha256()])
        else:
            refs.append([ref.label, "url", ref.source.url if ref.source else ref.given])
    body = json.dumps({"provider": provider, "model": model, "settings": settings, "references": refs}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()
