"""Interaction type by multiple choice: answer parsing, and the real transformers path on a tiny Qwen2-VL."""

from __future__ import annotations

import numpy as np
import pytest

from physinteract.perception import models
from physinteract.perception.vlm import (
    CONFIDENCE_THRESHOLD,
    INTERACTION_TYPES,
    build_prompt,
    classify_interaction,
    parse_answer,
    sample_frames,
)

PA, PN, SN = INTERACTION_TYPES

# (reply, expected type, expected temporal): letters in every form, option words, hedges, prose.
ANSWERS = [
    ("A", PA, None),
    ("(b)", PN, None),
    ("Answer: C", SN, None),
    ("the answer is b.", PN, None),
    ("Answer: (c)", SN, None),
    ("  c  ", SN, None),
    ("B impact", PN, "impact"),
    ("b) poke, continuous", PN, "continuous"),
    ("C. The ball bounces on the floor: an impact.", SN, "impact"),
    ("B\ncontinuous", PN, "continuous"),
    ("The correct option is (A). Continuous.", PA, "continuous"),
    ("Option C, instantaneous", SN, "impact"),
    ("A, sustained grasp", PA, "continuous"),
    ("A tap", PA, "impact"),
    ("The fingers pull the object: A, continuous.", PA, "continuous"),
    ("Answer: B\nExplanation: unlike option A, nothing holds on.", PN, None),
    ("point_non_adherent impact", PN, "impact"),
    ("It is point non-adherent.", PN, None),
    ("A finger pokes it and lets go.", PN, None),  # "A" is the article here, the words say B
    ("A surface presses it", SN, None),
    ("The object is pulled.", PA, None),
    ("The answer is a poke", PN, None),  # lower-case "a" is an article, not option A
    ("A or B", None, None),
    ("(A) or (B)", None, None),
    ("B/C", None, None),
    ("I think it's B, not A", None, None),
    ("continuous or impact", None, None),
    ("Pulled. A finger pokes it.", None, None),  # two options' words
    ("nothing here", None, None),
    ("BBBB", None, None),
    ("", None, None),
]


@pytest.mark.parametrize("reply,kind,temporal", ANSWERS)
def test_parse_answer_reads_the_option_the_reply_names(reply, kind, temporal):
    """Known answers: each reply names the given option (None when absent or hedged between two)."""
    assert parse_answer(reply) == (kind, temporal)


def test_prompt_offers_the_three_types_and_timing():
    """The question lists options A/B/C in the contract's order and asks continuous vs impact."""
    text = build_prompt(3)
    assert text.index("\nA.") < text.index("\nB.") < text.index("\nC.")
    assert "pull" in text and "poke" in text and "surface" in text and "continuous" in text and "impact" in text
    assert "3 images" in text


def test_sample_frames_spreads_over_the_video_and_keeps_ends():
    """4 of 10 frames are 0, 3, 6, 9; asking for more frames than exist gives each once."""
    assert sample_frames(np.zeros((10, 2, 2, 3)), 4).tolist() == [0, 3, 6, 9]
    assert sample_frames(np.zeros((2, 2, 2, 3)), 4).tolist() == [0, 1]


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.perception.tiny_models import make_tiny_vlm

    return make_tiny_vlm(tmp_path_factory.mktemp("vlm") / "tiny")


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(0).integers(0, 256, size=(6, 40, 52, 3), dtype=np.uint8)


def test_random_tiny_vlm_answers_through_the_real_path(tiny_vlm, frames):
    """A random Qwen2-VL loaded from disk still chooses one option, with a probability in [0, 1]."""
    guess = classify_interaction(frames, model=str(tiny_vlm))
    assert guess.source == "vlm" and guess.type in INTERACTION_TYPES and guess.temporal in ("continuous", "impact")
    assert 0.0 <= guess.confidence <= 1.0
    assert guess.type in guess.message


@pytest.mark.parametrize("reply,kind,temporal", [("B impact", PN, "impact"), ("Answer: C", SN, "continuous")])
def test_model_answer_decides_the_type(tiny_vlm, frames, tmp_path, reply, kind, temporal):
    """A model whose weights make it reply "B impact" (or "Answer: C") gives that type, sure of it (p ~ 1)."""
    from tests.perception.tiny_models import script_vlm

    folder = script_vlm(tiny_vlm, tmp_path / "scripted", reply)
    guess = classify_interaction(frames, model=str(folder), fallback=PA)
    assert (guess.type, guess.temporal, guess.source, guess.answer) == (kind, temporal, "vlm", reply)
    assert guess.confidence > 0.99


def test_unsure_model_yields_to_the_fallback(tiny_vlm, frames, tmp_path):
    """Replying "B impact" with A and C nearly as likely (p(B) ~ 1/3 < threshold): the user's choice wins."""
    from tests.perception.tiny_models import script_vlm

    folder = script_vlm(tiny_vlm, tmp_path / "unsure", "B impact", rivals=0.05)
    guess = classify_interaction(frames, model=str(folder), fallback=SN, fallback_temporal="impact")
    assert guess.answer == "B impact"
    assert (guess.type, guess.temporal, guess.source) == (SN, "impact", "fallback")
    assert guess.confidence < CONFIDENCE_THRESHOLD and "unsure" in guess.message
    sure_enough = classify_interaction(frames, model=str(folder))  # no fallback: the model's own choice stands
    assert (sure_enough.type, sure_enough.source) == (PN, "vlm") and "unsure" in sure_enough.message


def test_unparsable_answer_falls_back_and_says_why(tiny_vlm, frames, tmp_path):
    """A reply naming no option falls back to the user's choice; without one, the best-scored letter is used."""
    from tests.perception.tiny_models import script_vlm

    folder = script_vlm(tiny_vlm, tmp_path / "vague", "the object moves")
    guess = classify_interaction(frames, model=str(folder), fallback=PN)
    assert (guess.type, guess.source) == (PN, "fallback")
    assert "names no single option" in guess.message and "the object moves" in guess.message
    forced = classify_interaction(frames, model=str(folder))
    assert forced.source == "vlm" and forced.type in INTERACTION_TYPES and "names no single option" in forced.message


@pytest.fixture
def no_models(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.delenv("PHYSINTERACT_VLM", raising=False)
    monkeypatch.delenv("PHYSINTERACT_MODELS", raising=False)


def test_missing_model_falls_back_with_placement_message(no_models, frames):
    """No model anywhere: the user's type is used and the message says where to put the model."""
    guess = classify_interaction(frames, fallback=SN, fallback_temporal="impact")
    assert (guess.type, guess.temporal, guess.source, guess.confidence, guess.answer) == (SN, "impact", "fallback", 0.0, "")
    assert models.missing_message("vlm") in guess.message


def test_missing_model_without_fallback_asks_for_interaction(no_models, frames):
    """No model and no fallback: a ValueError telling the user to pass --interaction."""
    with pytest.raises(ValueError, match="--interaction"):
        classify_interaction(frames)


def test_broken_model_folder_falls_back(tmp_path, frames):
    """A folder with a config.json that is no model: load failure is reported, the fallback is used."""
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"model_type": "qwen2_vl"}')
    guess = classify_interaction(frames, model=str(tmp_path / "broken"), fallback=PA)
    assert guess.source == "fallback" and guess.type == PA and "could not load" in guess.message


def test_bad_arguments_are_named(frames):
    """An unknown fallback type or a frame array of the wrong shape is refused by name."""
    with pytest.raises(ValueError, match="poke"):
        classify_interaction(frames, fallback="poke")
    with pytest.raises(ValueError, match="shape"):
        classify_interaction(frames[0], fallback=PA)
