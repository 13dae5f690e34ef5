"""Characters in a generation: their files join the request's references, and `@name` in the prompt becomes the
label the host expects.

Explicit references keep their labels; characters come after them, images after images and clips after
clips, in the order the request lists them: with one reference image and characters [alice (an image),
bob (a clip)], alice is "Image 2" and bob "Video 1". Every other check (1-5 references, durations,
voices per host) then applies to the total, as for any request.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from ..errors import InputError, InputErrors
from ..models.base import image_label, video_label
from ..references.folders import Folders
from ..schema import GenerateArgs, Limits, Voice
from .roster import Cast, Character, check_name, name_key

AT = re.compile(r"(?<![\w@.])@")  # an @ that starts a mention, not one inside an e-mail address (me@alice.com)
NAME = re.compile(r"[^\W_][\w-]*")


def scan(prompt: str, names: list[str]) -> list[tuple[int, int, str]]:
    """Each @mention as (start, end, name). A known name is matched first, the longest first and whatever its case,
    so "@小明走进来" is 小明 walking in (scripts without spaces have no word end to find); a Latin name must end
    where a word does ("@alice2" is not alice). An unknown mention is taken to its word's end."""
    found = []
    ordered = sorted(names, key=len, reverse=True)
    for at in AT.finditer(prompt):
        rest = prompt[at.end():]
        match = None
        for name in ordered:
            after = rest[len(name):len(name) + 1]
            latin_end = name[-1:].isascii() and after.isascii() and (after.isalnum() or after in "_-") and after
            if rest[:len(name)].casefold() == name.casefold() and not latin_end:
                match = name
                break
        if match is None:
            word = NAME.match(rest)
            if word is None:
                continue
            match = word.group(0)
        found.append((at.start(), at.end() + len(match), match))
    return found


def mentions(prompt: str, names: list[str] | None = None) -> list[str]:
    return [name for _, _, name in scan(prompt, names or [])]


def kept_files(cast: Cast, characters: list[Character]) -> dict[Path, str]:
    """The cast's own files a request may read, by how its references list shows them."""
    kept: dict[Path, str] = {}
    for c in characters:
        kept[(cast.folder / c.media).resolve()] = f"@{c.name}"
        if c.voice:
            kept[(cast.folder / c.voice).resolve()] = f"@{c.name} (voice)"
    return kept


def resolve(cast: Cast, owner: str, names: list[str], prompt: str, field: str = "characters") -> list[Character]:
    """The characters a request lists, checked: each saved, with its files, and every @name of the prompt listed."""
    errors: list[InputError] = []
    found: list[Character] = []
    seen: set[str] = set()
    saved = None
    for i, raw in enumerate(names):
        try:
            name = check_name(raw, f"{field}[{i}]")
        except InputError as exc:
            errors.append(exc)
            continue
        if name_key(name) in seen:
            continue
        seen.add(name_key(name))
        character = cast.get(owner, name)
        if character is None:
            saved = saved if saved is not None else [c.name for c in cast.list(owner)]
            errors.append(InputError(
                f"no character is named '{name}'", field=f"{field}[{i}]",
                limit="saved: " + (", ".join(saved[:20]) or "none yet"),
                fix="save it first with save_character(name, reference), or use one of the saved names"))
            continue
        gone = cast.missing(character)
        if gone:
            errors.append(InputError(
                f"character '{character.name}' has lost its file(s) from the server's cast folder ({', '.join(gone)})",
                field=f"{field}[{i}]", fix=f"save it again: save_character(name=\"{character.name}\", reference=..., "
                                           "replace=true)"))
            continue
        found.append(character)
    saved = saved if saved is not None else [c.name for c in cast.list(owner)]
    for name in dict.fromkeys(mentions(prompt, saved)):
        if name_key(name) not in seen:
            known = cast.get(owner, name) is not None
            errors.append(InputError(
                f"names @{name}, who is not in {field}", field="prompt",
                fix=f"add \"{name}\" to {field}" if known else
                f"save_character(name=\"{name}\", ...) and add it to {field}, or remove @{name} from the prompt"))
    if errors:
        raise InputErrors(errors)
    return found


def rewrite(prompt: str, labels: dict[str, str]) -> str:
    """@name -> its label, whatever the case it is written in."""
    by_key = {name_key(n): label for n, label in labels.items()}
    out, at = [], 0
    for start, end, name in scan(prompt, list(labels)):
        if name_key(name) in by_key:
            out += [prompt[at:start], by_key[name_key(name)]]
            at = end
    return "".join(out) + prompt[at:]


def cast_into(args: GenerateArgs, cast: Cast, owner: str, folders: Folders) -> tuple[GenerateArgs, Folders, dict[str, str]]:
    """The request with its characters added as references and its prompt rewritten; the folders it may read (the
    cast's own files besides the caller's), and which label each character got."""
    if not args.characters and not mentions(args.prompt):
        return args, folders, {}
    characters = resolve(cast, owner, list(args.characters), args.prompt)
    images, videos, voices = list(args.reference_images), list(args.reference_videos), list(args.voices)
    labels: dict[str, str] = {}
    for c in characters:
        path = str(cast.folder / c.media)
        if c.kind == "video":
            label = video_label(len(videos))
            videos.append(path)
        else:
            label = image_label(len(images))
            images.append(path)
        labels[c.name] = label
        if c.voice:
            voices.append(Voice(label=label, audio=str(cast.folder / c.voice)))
    prompt = rewrite(args.prompt, labels)
    if len(prompt) > Limits.PROMPT_MAX:
        raise InputErrors([InputError(f"is {len(prompt)} characters once each @name is replaced by its label",
                                      field="prompt", limit=f"at most {Limits.PROMPT_MAX}", fix="shorten it")])
    updated = args.model_copy(update={"reference_images": images, "reference_videos": videos, "voices": voices,
                                      "prompt": prompt})
    return updated, replace(folders, kept={**folders.kept, **kept_files(cast, characters)}), labels
