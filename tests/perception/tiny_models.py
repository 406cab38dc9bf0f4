"""Tiny randomly-initialised perception models built from configs, for the real loading code paths.

``make_tiny_vlm`` builds a Qwen2-VL with a two-layer, 32-wide language model, a one-block vision
tower and a byte-pair tokenizer trained here on a few sentences, and saves it with
``save_pretrained`` so that ``physinteract.perception.vlm`` loads it exactly as it loads a real
Qwen2-VL checkpoint (config, weights, tokenizer, processor, chat template).
"""

from __future__ import annotations

from pathlib import Path

# Qwen's chat special tokens, in Qwen's order; the model's config refers to their ids.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# A minimal Qwen2-VL chat template: text items verbatim, each image as its vision placeholder.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' or 'image' in item %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' or 'video' in item %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "A B C (A) (B) (C) Answer: A. Answer: B. Answer: C.",
    "grasped and pulled, poked and released, bounced or pressed by a surface.",
    "continuous grasp or instantaneous impact? The object is held, pushed, dropped, touched.",
    "Look at the frames of the video and choose one option. Reply with the letter and one word.",
    "system user assistant You are a helpful assistant. 0 1 2 3 4 5 6 7 8 9",
]


def make_tiny_tokenizer():
    """A byte-level BPE tokenizer (vocabulary ~400) with Qwen's chat special tokens, as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )


def make_tiny_vlm(folder: Path, seed: int = 0) -> Path:
    """Build, save and return ``folder``: a tiny random Qwen2-VL loadable with ``from_pretrained``."""
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    folder = Path(folder)
    tokenizer = make_tiny_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = 16
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    assert 2 * sum(config.text_config.rope_parameters["mrope_section"]) == head_dim
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], do_sample=False
    )
    # 56x56 px images: 4x4 patches of 14 px, merged 2x2 into 4 tokens per image.
    pixels = {"min_pixels": 56 * 56, "max_pixels": 56 * 56}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def script_vlm(folder: Path, out: Path, reply: str, rivals: float | None = None) -> Path:
    """Copy the tiny VLM at ``folder`` to ``out`` with weights set so that it always replies ``reply``.

    The layers' output projections are zeroed, so the last hidden state is the current token's embedding.
    Every embedding gets a constant component (dim 0) and the reply's tokens one marker dimension each;
    the output head then maps "any other token" -> the reply's first token, each reply token -> the next
    one, and the last one -> <|im_end|>. A greedy decoder thus writes ``reply`` whatever the images show.
    With ``rivals``, the option letters A, B, C not starting the reply score ``rivals`` (in logits) below
    its first token at the first step: the reply is unchanged but the model is unsure of it.
    """
    import torch
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    model = Qwen2VLForConditionalGeneration.from_pretrained(folder, local_files_only=True)
    chain = processor.tokenizer.encode(reply, add_special_tokens=False) + [processor.tokenizer.convert_tokens_to_ids("<|im_end|>")]
    assert len(set(chain)) == len(chain) and len(chain) < model.config.text_config.hidden_size, chain
    lm = model.model.language_model
    with torch.no_grad():
        for layer in lm.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = lm.embed_tokens.weight
        emb.zero_()
        emb[:, 0] = 1.0
        head = model.lm_head.weight
        head.zero_()
        for j, tok in enumerate(chain[:-1]):
            emb[tok, j + 1] = 1.0  # marker of "the current token is the reply's j-th"
            head[chain[j + 1], j + 1] = 20.0  # ... which makes the next one likely
        head[chain[0], 0] = 10.0  # any other token starts the reply
        head[chain[0], 1:len(chain)] = -20.0  # but not from inside it
        if rivals is not None:
            scale = float(model.config.text_config.hidden_size) ** 0.5  # dim 0 of a normalised lone-dim-0 state
            for letter in "ABC":
                (tok,) = processor.tokenizer.encode(letter, add_special_tokens=False)
                if tok != chain[0]:
                    head[tok, 0] = 10.0 - rivals / scale
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return Path(out)
