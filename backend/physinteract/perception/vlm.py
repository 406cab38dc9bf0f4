"""The interaction type, by a multiple-choice question to a Qwen2-VL-family vision-language model.

A few frames sampled from the video are shown to the model with a question whose options are the
contract's interaction types (A/B/C) and the contact's temporal character (continuous or impact).
The model answers greedily. Its choice is scored as a multiple choice: the probabilities of the
option letters' tokens at the step where the answer writes its letter (else at its first token),
renormalised over A/B/C, give the confidence.

The model is never downloaded: it is found by ``perception.models.locate("vlm", ...)`` and loaded
with ``local_files_only=True``. When it is missing, fails, answers out of format or is unsure
(confidence below ``CONFIDENCE_THRESHOLD``), the user's choice (``fallback``) is used and the
returned message says so and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from physinteract.contract import INTERACTION_TYPES  # interaction.type; LETTERS[i] names INTERACTION_TYPES[i]
from physinteract.perception import models

TEMPORAL = ("continuous", "impact")
LETTERS = ("A", "B", "C")  # option letter of INTERACTION_TYPES[i]
CONFIDENCE_THRESHOLD = 0.5  # below this probability of its choice, the model is "unsure" and a given fallback wins
MAX_IMAGE_SIDE = 448  # px; sampled frames are downscaled to this longest side before the processor sees them


@dataclass
class InteractionGuess:
    type: str  # one of INTERACTION_TYPES
    temporal: str  # "continuous" | "impact"
    source: str  # "vlm" | "fallback"
    confidence: float  # 0..1, the model's probability (over A/B/C) of `type`; 0 when the model did not run
    answer: str  # the raw model text ("" when the model did not run)
    message: str  # human-readable: what was decided, and when falling back, why


def build_prompt(num_frames: int = 4) -> str:
    """The multiple-choice question shown after ``num_frames`` frames, worded for an animator."""
    return (
        f"The {num_frames} images are frames of one video, in time order. They show an object being deformed "
        "by an interaction.\n"
        "Question 1: how is the object deformed?\n"
        "A. Point adherent: a hand, fingers or a tool grasps the object at a point and pulls or drags it; "
        "the contact holds on to the object.\n"
        "B. Point non-adherent: a finger or a tool pokes or pushes the object at a point and then releases it; "
        "the contact does not hold on.\n"
        "C. Surface non-adherent: the object is bounced on, dropped onto or pressed by a surface such as a floor, "
        "a table or a plate.\n"
        "Question 2: is the contact continuous (kept over many frames, like a grasp or a steady press) or an "
        "impact (instantaneous, like a hit, a tap or a bounce)?\n"
        "Reply with the letter of your answer to question 1, then the word continuous or impact."
    )


# --- answer parsing -------------------------------------------------------------------------------------------

_TEMPORAL_WORDS = {
    "continuous": r"continu\w*|sustain\w*|steady|grasp\w*|held|holding",
    "impact": r"impact\w*|instant\w*|momentary|brief(?:ly)?|sudden\w*|tap\w*",
}
# Words that name an option when no letter is given. Deliberately not "grasp"/"press" alone:
# those also describe the temporal character.
_TYPE_WORDS = {
    "point_adherent": r"(?<!non[ _-])(?<!non)point[ _-]?adherent|\badheren(?:t|ce)\b(?<!non[ _-]adherent)|\bpull(?:s|ed|ing)?\b",
    "point_non_adherent": r"point[ _-]?non[ _-]?adherent|\bpok(?:e|es|ed|ing)\b",
    "surface_non_adherent": r"surface[ _-]?non[ _-]?adherent|\bsurface\b|\bbounc(?:e|es|ed|ing)\b|\bdrop(?:s|ped)?\b",
}
_ANY_TEMPORAL = "|".join(_TEMPORAL_WORDS.values())
# Tiers of letter evidence, strongest first; within a tier two different letters are ambiguous.
# Lower-case letters count only where marked ("(b)", "b)", "answer: c"), never as the article "a".
_LETTER_TIERS = [
    # "Answer: B", "the answer is (b)", "answer - c.", or the whole reply is one letter.
    [r"(?i:answer)\s*(?:is|:|-|=)?\s*(?:(?i:option)\s*)?(?:[\(\[]([ABCabc])[\)\]]|([ABC])(?![A-Za-z])|([abc])(?=\s*(?:[.,;:!)]|$)))",
     r"^\W*([ABCabc])\W*$"],
    # The reply starts with the letter: "B impact", "(b) ...", "c. ...", "a) ...".
    [r"^\W*?[\(\[]([ABCabc])[\)\]]", r"^\s*([ABCabc])[.):,](?![A-Za-z])", r"^\s*([ABC])(?![A-Za-z])"],
    # Marked letters anywhere: "(B)", "option c", "b)".
    [r"[\(\[]([ABCabc])[\)\]]", r"(?i:\boption)\s+([ABCabc])(?![A-Za-z])", r"(?<![A-Za-z(\[])([ABCabc])\)"],
    # Bare capitals anywhere.
    [r"(?<![A-Za-z])([ABC])(?![A-Za-z])"],
]


def _is_article(text: str, at: int) -> bool:
    """Whether the "A" at ``at`` is the article: it starts a sentence and a lower-case word other than a timing word follows."""
    before = text[:at].rstrip()
    after = text[at + 1:]
    return (not before or before[-1] in ".!?") and re.match(r"\s+[a-z]", after) is not None and \
        re.match(rf"\s+(?:{_ANY_TEMPORAL})\b", after) is None


def _parse_type(text: str) -> str | None:
    if re.search(r"(?<![A-Za-z])[\(\[]?([ABC])[\)\]]?\s*(?:or|/|vs\.?|and|,)\s*[\(\[]?(?!\1)[ABC](?![A-Za-z])", text):
        return None  # a hedge between options: "A or B", "(B)/(C)"
    for tier in _LETTER_TIERS:
        found = set()
        for pattern in tier:
            for m in re.finditer(pattern, text):
                group = next(i for i in range(1, len(m.groups()) + 1) if m.group(i))
                if m.group(group) != "A" or not _is_article(text, m.start(group)):
                    found.add(m.group(group).upper())
        if len(found) == 1:
            return INTERACTION_TYPES[LETTERS.index(found.pop())]
        if len(found) > 1:
            return None
    by_words = {t for t, pattern in _TYPE_WORDS.items() if re.search(pattern, text, flags=re.IGNORECASE)}
    return by_words.pop() if len(by_words) == 1 else None


def _parse_temporal(text: str) -> str | None:
    found = {t for t, pattern in _TEMPORAL_WORDS.items() if re.search(rf"\b(?:{pattern})\b", text, flags=re.IGNORECASE)}
    return found.pop() if len(found) == 1 else None


def parse_answer(text: str) -> tuple[str | None, str | None]:
    """(interaction type, temporal) named by a model's reply; None for a part that is absent or ambiguous.

    The type is read from option letters ("B", "(b)", "Answer: C", "option a"), strongest evidence first
    (an explicit "answer", then the reply's first word, then marked letters, then bare capitals), and,
    when no letter is given, from the option's words ("poked", "surface", "point_adherent"). Two different
    options at the same strength are ambiguous. The temporal part is "continuous" or "impact" from their
    words or synonyms ("instantaneous", "grasp", ...), None when both or neither appear.
    """
    return _parse_type(text), _parse_temporal(text)


# --- the model ------------------------------------------------------------------------------------------------


def sample_frames(frames: np.ndarray, num_frames: int) -> np.ndarray:
    """``num_frames`` frames evenly spread over ``frames`` [T, H, W, 3], first and last included: [K] indices."""
    t = len(frames)
    return np.unique(np.round(np.linspace(0, t - 1, max(1, min(num_frames, t)))).astype(int))


def _model_class(model_type: str) -> Any:
    import transformers

    known = {"qwen2_vl": "Qwen2VLForConditionalGeneration", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration"}
    return getattr(transformers, known.get(model_type, "AutoModelForImageTextToText"))


def load_vlm(folder: Path, device: str = "cpu") -> tuple[Any, Any]:
    """(processor, model) from a local model folder; never downloads. bfloat16 on CUDA, float32 on the CPU."""
    import torch
    from transformers import AutoConfig, AutoProcessor

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    net = _model_class(config.model_type).from_pretrained(folder, local_files_only=True, dtype=dtype)
    return processor, net.to(device).eval()


def _letter_token_ids(tokenizer: Any) -> list[list[int]]:
    """For each option letter, the ids of the single tokens that spell it ("B", " B")."""
    ids = []
    for letter in LETTERS:
        variants = {tuple(tokenizer.encode(s, add_special_tokens=False)) for s in (letter, " " + letter)}
        single = sorted(v[0] for v in variants if len(v) == 1)
        if not single:
            raise _Unusable(f"the model's tokenizer has no single token for the option letter {letter}")
        ids.append(single)
    return ids


class _Unusable(Exception):
    """The model ran but cannot answer this question (said in the fallback message)."""


def _letter_probabilities(logits: Any, letter_ids: list[list[int]]) -> np.ndarray:
    """[3] probabilities of A/B/C from one step's logits [V]: each letter's variants summed, renormalised."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    per_letter = torch.stack([torch.logsumexp(logp[ids], dim=0) for ids in letter_ids])
    return torch.softmax(per_letter, dim=0).cpu().numpy()


@dataclass
class VLMReply:
    answer: str  # the generated text, special tokens removed
    letter_probs: np.ndarray  # [S, 3] probabilities of A/B/C at each generated step (renormalised over the three)
    emitted: np.ndarray  # [S] int, index of the option letter written at each step, -1 for other tokens

    def probs_for(self, kind: str | None) -> np.ndarray:
        """[3] A/B/C probabilities where the answer wrote ``kind``'s letter, else its first letter, else its first token."""
        steps = np.flatnonzero(self.emitted == INTERACTION_TYPES.index(kind)) if kind else np.empty(0, int)
        if len(steps) == 0:
            steps = np.flatnonzero(self.emitted >= 0)
        return self.letter_probs[int(steps[0]) if len(steps) else 0]


def ask_vlm(processor: Any, net: Any, frames: np.ndarray, num_frames: int = 4, max_new_tokens: int = 16) -> VLMReply:
    """Show sampled ``frames`` [T, H, W, 3] uint8 and the question; the greedy reply and its letter scores."""
    import torch
    from PIL import Image

    from physinteract.perception.video import downscale

    picked = sample_frames(frames, num_frames)
    images = [Image.fromarray(np.ascontiguousarray(downscale(frames[i], MAX_IMAGE_SIDE))) for i in picked]
    content = [{"type": "image", "image": im} for im in images] + [{"type": "text", "text": build_prompt(len(images))}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)
    letter_ids = _letter_token_ids(processor.tokenizer)
    inputs = processor(text=[text], images=images, return_tensors="pt").to(net.device)
    with torch.inference_mode():
        out = net.generate(
            **inputs, max_new_tokens=max(1, max_new_tokens), do_sample=False, repetition_penalty=1.0,
            output_logits=True, return_dict_in_generate=True,
        )
    new_tokens = out.sequences[0, inputs["input_ids"].shape[1]:].tolist()
    answer = processor.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
    probs = np.stack([_letter_probabilities(step[0], letter_ids) for step in out.logits])
    emitted = np.array([next((k for k, ids in enumerate(letter_ids) if tok in ids), -1) for tok in new_tokens], dtype=int)
    return VLMReply(answer, probs, emitted)


def classify_interaction(
    frames: np.ndarray,  # [T, H, W, 3] uint8 RGB
    model: str | None = None,
    fallback: str | None = None,
    fallback_temporal: str = "continuous",
    num_frames: int = 4,
    device: str = "cpu",
    max_new_tokens: int = 16,
) -> InteractionGuess:
    """The interaction type and temporal character of a video, by the VLM or else the user's ``fallback``.

    Args:
        frames: the video's frames; ``num_frames`` of them, evenly spread, are shown to the model.
        model: a local model folder or hub id (found in the hub cache only); default: models.MODELS["vlm"].
        fallback: the user's interaction type, used when the model is missing, fails, answers out of format
            or is unsure (probability of its choice below CONFIDENCE_THRESHOLD).
        fallback_temporal: the user's temporal character, used when the model does not say it.

    Without a fallback, a missing or failing model raises ValueError (asking for --interaction); an
    unparsable or unsure answer is then still the model's: its highest-scored option letter.
    """
    if fallback is not None and fallback not in INTERACTION_TYPES:
        raise ValueError(f"fallback interaction type {fallback!r} is not one of {', '.join(INTERACTION_TYPES)}")
    if fallback_temporal not in TEMPORAL:
        raise ValueError(f"fallback temporal {fallback_temporal!r} is not one of {', '.join(TEMPORAL)}")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be [T, H, W, 3] RGB with T >= 1, got shape {frames.shape}")

    def fall_back(why: str, answer: str = "", probs: np.ndarray | None = None) -> InteractionGuess:
        if fallback is None:
            raise ValueError(f"{why}. Give the interaction type yourself with --interaction ({' | '.join(INTERACTION_TYPES)}).")
        conf = float(probs[INTERACTION_TYPES.index(fallback)]) if probs is not None else 0.0
        return InteractionGuess(fallback, fallback_temporal, "fallback", conf, answer,
                                f"{why}; using the given interaction {fallback} ({fallback_temporal})")

    folder = models.locate("vlm", model)
    if folder is None:
        return fall_back(f"no vision-language model: {models.missing_message('vlm')}")
    try:
        processor, net = load_vlm(folder, device)
    except Exception as e:  # a broken or incompatible model folder must not stop the initialisation
        return fall_back(f"could not load the vision-language model at {folder}: {type(e).__name__}: {e}")
    try:
        reply = ask_vlm(processor, net, frames, num_frames, max_new_tokens)
    except _Unusable as e:
        return fall_back(f"the vision-language model at {folder} cannot answer: {e}")
    except Exception as e:
        return fall_back(f"the vision-language model at {folder} failed: {type(e).__name__}: {e}")

    answer = reply.answer
    parsed, temporal = parse_answer(answer)
    probs = reply.probs_for(parsed)
    scored = INTERACTION_TYPES[int(np.argmax(probs))]
    notes = []
    if parsed is None:
        if fallback is not None:
            return fall_back(f"the model's answer {answer!r} names no single option", answer, probs)
        parsed = scored
        notes.append(f"the answer {answer!r} names no single option, so its highest-scored letter is used")
    confidence = float(probs[INTERACTION_TYPES.index(parsed)])
    letter = LETTERS[INTERACTION_TYPES.index(parsed)]
    if confidence < CONFIDENCE_THRESHOLD:
        if fallback is not None:
            return fall_back(f"the model is unsure (p={confidence:.2f} for {letter} {parsed}, below {CONFIDENCE_THRESHOLD})",
                             answer, probs)
        notes.append(f"the model is unsure (p={confidence:.2f}, below {CONFIDENCE_THRESHOLD}) and no fallback was given")
    if temporal is None:
        temporal = fallback_temporal
        notes.append(f"the answer does not say continuous or impact, so {fallback_temporal} is assumed")
    message = f"vision-language model: {letter} {parsed}, {temporal} (p={confidence:.2f})" + "".join("; " + n for n in notes)
    return InteractionGuess(parsed, temporal, "vlm", confidence, answer, message)
