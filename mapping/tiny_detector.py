"""A tiny, randomly initialised OWLv2 detector built offline.

Where no detector weights are present (no hub access, nothing downloaded), the ``detector``
perception path still runs end to end on it: a 2-layer vision tower on 64x64 images with
8-pixel patches (64 boxes a frame), a 2-layer text tower and a byte-level BPE tokenizer trained
on the household category names, saved with ``save_pretrained`` so it loads by path like any
hub model. Its boxes and scores are noise: figures made with it measure the pipeline, never
a detector.
"""

from __future__ import annotations

from pathlib import Path

from aeqa.mapping.perception import HOUSEHOLD_CATEGORIES

IMAGE_SIDE_PX = 64
PATCH_PX = 8
#: OWL's text tower reads this many tokens a prompt (its processor pads every prompt to it)
MAX_PROMPT_TOKENS = 16
#: CLIP's padding token ``!`` keeps id 0: OWL treats a prompt whose first id is 0 as padding
SPECIAL_TOKENS = ("!", "<|startoftext|>", "<|endoftext|>")


def build_tiny_owlv2(folder: Path, seed: int = 0) -> Path:
    """Save a tiny OWLv2 model and its processor to ``folder`` (created); return it.

    Args:
        seed: torch seed of the random weights; the same seed saves the same weights.
    """
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2Processor,
        PreTrainedTokenizerFast,
    )

    # transformers 5 names the torchvision-free image processor ``...Pil``; 4.x has only one.
    image_processor_class = getattr(
        transformers, "Owlv2ImageProcessorPil", transformers.Owlv2ImageProcessor
    )

    pad, bos, eos = SPECIAL_TOKENS
    bpe = Tokenizer(models.BPE(unk_token=eos))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(HOUSEHOLD_CATEGORIES, trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        special_tokens=[(bos, bpe.token_to_id(bos)), (eos, bpe.token_to_id(eos))],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token=eos,
        model_max_length=MAX_PROMPT_TOKENS,
    )
    processor = Owlv2Processor(
        image_processor=image_processor_class(
            size={"height": IMAGE_SIDE_PX, "width": IMAGE_SIDE_PX}
        ),
        tokenizer=tokenizer,
    )
    config = Owlv2Config(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": MAX_PROMPT_TOKENS,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIDE_PX,
            "patch_size": PATCH_PX,
        },
        projection_dim=32,
    )
    torch.manual_seed(seed)
    model = Owlv2ForObjectDetection(config).eval()
    with torch.no_grad():
        # At full scale a random box head pushes every box into a corner with no area; scaled
        # down, boxes stay near OWL's priors, one patch-sized box per patch, shifted a little.
        model.box_head.dense2.weight.mul_(0.05)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
