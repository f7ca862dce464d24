"""Tiny random-weight diffusers text-to-image pipelines, saved in the real `save_pretrained` layout.

The component shapes follow diffusers' own `get_dummy_components()` fixtures, shrunk further where that is
free, but the *structure* follows the production checkpoints: same pipeline class, same component classes,
same scheduler family, and VAEs with as many down-sampling levels as the real ones, so the size multiple a
caller must respect is the production one.
"""

# diffusers' model and pipeline constructors are unannotated; calling them is the point of this module.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from pathlib import Path
from typing import Final, cast

from diffusers import (
    AutoencoderKL,
    AutoencoderKLFlux2,
    AutoencoderKLQwenImage,
    DDIMScheduler,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Transformer2DModel,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
    StableDiffusionPipeline,
    UNet2DConditionModel,
    ZImagePipeline,
    ZImageTransformer2DModel,
)
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3Model,
)

from ._build import build_once, reseed
from ._text import (
    CLIP_MAX_LENGTH,
    build_clip_tokenizer,
    build_qwen_tokenizer,
    chatml_template,
    clip_vocab_size,
    qwen_vocab_size,
    token_id,
)

# Bump a version whenever that builder's output changes, so cached copies are rebuilt (see build_once).
_ZIMAGE_VERSION: Final[int] = 1
_SD_VERSION: Final[int] = 1
_QWEN_IMAGE_VERSION: Final[int] = 1
_FLUX2_VERSION: Final[int] = 1

# Width of the tiny text encoders; the denoisers' caption projections are sized to match.
_TEXT_DIM: Final[int] = 32


def _save_pipeline(pipe: object, path: Path) -> None:
    """Save a pipeline as safetensors, the format production checkpoints use.

    The cast (and importing DiffusionPipeline from its defining module) is for mypy only: through the
    `diffusers` package it resolves pipeline classes to diffusers' dummy placeholders, the `else` branch of
    its import-time availability checks.
    """
    cast(DiffusionPipeline, pipe).save_pretrained(path, safe_serialization=True)


# --- Shared Qwen3 text encoder (Z-Image, Flux2-Klein) ---------------------------------------------------


def _qwen3_config(*, num_hidden_layers: int = 2) -> Qwen3Config:
    """A two-layer Qwen3 over the tiny vocabulary; `head_dim` is explicit because Qwen3's default is 128."""
    tokenizer = build_qwen_tokenizer()
    return Qwen3Config(
        vocab_size=qwen_vocab_size(),
        hidden_size=_TEXT_DIM,
        intermediate_size=2 * _TEXT_DIM,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=_TEXT_DIM // 2,
        # Z-Image pads prompts to 512 tokens; leave room for the chat-template wrapper as well.
        max_position_embeddings=1024,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=token_id(tokenizer, "<|im_end|>"),
    )


# --- Z-Image --------------------------------------------------------------------------------------------


def _zimage_vae() -> AutoencoderKL:
    """A four-level AutoencoderKL (scale factor 8, 16 latent channels) like Z-Image's, 8-16 channels wide."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=8,
        sample_size=32,
        # Z-Image's (Flux.1's) latent statistics, so latents are scaled the way the real VAE expects.
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
        mid_block_add_attention=True,
    )


def _zimage_transformer() -> ZImageTransformer2DModel:
    """A two-layer Z-Image single-stream DiT (head dim 16 = sum of the RoPE axes dims)."""
    return ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=16,
        dim=32,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        norm_eps=1e-5,
        qk_norm=True,
        cap_feat_dim=_TEXT_DIM,
        rope_theta=256.0,
        t_scale=1000.0,
        axes_dims=[8, 4, 4],
        # The production lengths: position tables are computed, not stored, so this costs nothing on disk and
        # keeps 512-token prompts (Z-Image's default max_sequence_length) within range.
        axes_lens=[1024, 512, 512],
    )


def _flow_match_scheduler(**overrides: object) -> FlowMatchEulerDiscreteScheduler:
    """The flow-matching Euler scheduler the DiT pipelines use."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, **overrides)


def _write_zimage(path: Path, seed: int) -> None:
    """Assemble and save a tiny ZImagePipeline."""
    reseed(seed, 0)
    transformer = _zimage_transformer()
    reseed(seed, 1)
    vae = _zimage_vae()
    reseed(seed, 2)
    text_encoder = Qwen3Model(_qwen3_config())
    pipe = ZImagePipeline(
        # Z-Image-Turbo's scheduler settings.
        scheduler=_flow_match_scheduler(shift=3.0, use_dynamic_shifting=False),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_qwen_tokenizer(chat_template=chatml_template(vision=False)),
        transformer=transformer,
    )
    _save_pipeline(pipe, path)


def build_tiny_zimage(path: Path, *, seed: int = 0) -> Path:
    """Build (once) a tiny ZImagePipeline at `path`: Z-Image DiT, Qwen3 text encoder, Qwen2Tokenizer.

    Image sizes must be multiples of 16 (VAE scale factor 8 times the DiT patch size 2). Always pass
    `height`/`width`: the pipeline defaults to 1024x1024, which is slow even for a tiny model.
    """
    return build_once(
        path, kind="zimage", version=_ZIMAGE_VERSION, seed=seed, write=lambda p: _write_zimage(p, seed)
    )


# --- Stable Diffusion -----------------------------------------------------------------------------------


def _sd_vae() -> AutoencoderKL:
    """A four-level AutoencoderKL (scale factor 8, 4 latent channels) like Stable Diffusion 1.x's."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
        scaling_factor=0.18215,
    )


def _sd_unet() -> UNet2DConditionModel:
    """A two-level conditional UNet; its default `sample_size * 8` gives the pipeline a 32px default size."""
    return UNet2DConditionModel(
        sample_size=4,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        attention_head_dim=8,
        cross_attention_dim=_TEXT_DIM,
    )


def _sd_text_encoder() -> CLIPTextModel:
    """A two-layer CLIP text encoder whose special-token ids match the tiny CLIP tokenizer."""
    tokenizer = build_clip_tokenizer()
    config = CLIPTextConfig(
        vocab_size=clip_vocab_size(),
        hidden_size=_TEXT_DIM,
        intermediate_size=2 * _TEXT_DIM,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=CLIP_MAX_LENGTH,
        projection_dim=_TEXT_DIM,
        bos_token_id=tokenizer.bos_token_id,
        # Must be the tokenizer's real id: CLIP pools at the first eos (only the legacy id 2 means "argmax").
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def _sd_scheduler() -> DDIMScheduler:
    """DDIM with Stable Diffusion 1.5's noise schedule.

    Not SD 1.5's default PNDM: PNDM runs one extra model call (and step callback) for its warm-up, so
    `num_inference_steps=2` would report three steps, which breaks progress reporting built on callbacks.
    """
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
        timestep_spacing="leading",
    )


def _write_stable_diffusion(path: Path, seed: int) -> None:
    """Assemble and save a tiny StableDiffusionPipeline without a safety checker."""
    reseed(seed, 0)
    unet = _sd_unet()
    reseed(seed, 1)
    vae = _sd_vae()
    reseed(seed, 2)
    text_encoder = _sd_text_encoder()
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_clip_tokenizer(),
        unet=unet,
        scheduler=_sd_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    _save_pipeline(pipe, path)


def build_tiny_stable_diffusion(path: Path, *, seed: int = 0) -> Path:
    """Build (once) a tiny StableDiffusionPipeline at `path`: UNet, CLIP text encoder, CLIPTokenizer, DDIM.

    Image sizes must be multiples of 8 (the pipeline's own check; also the VAE scale factor).
    """
    return build_once(
        path,
        kind="stable-diffusion",
        version=_SD_VERSION,
        seed=seed,
        write=lambda p: _write_stable_diffusion(p, seed),
    )


# --- Qwen-Image -----------------------------------------------------------------------------------------


def _qwen_image_text_encoder() -> Qwen2_5_VLForConditionalGeneration:
    """A two-layer Qwen2.5-VL (Qwen-Image's text encoder class) whose vision ids match the tiny tokenizer."""
    tokenizer = build_qwen_tokenizer()

    def ids(token: str) -> int:
        return token_id(tokenizer, token)

    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": qwen_vocab_size(),
            "hidden_size": _TEXT_DIM,
            "intermediate_size": 2 * _TEXT_DIM,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 2048,
            # Multimodal RoPE splits each head's 16 dims into (temporal, height, width) sections of pairs.
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1_000_000.0,
                "mrope_section": [2, 3, 3],
            },
            # The defaults are the real Qwen vocabulary's ids, out of range for the tiny one.
            "bos_token_id": None,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": ids("<|im_end|>"),
        },
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": _TEXT_DIM,
            "fullatt_block_indexes": [0],
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    return Qwen2_5_VLForConditionalGeneration(config)


def _write_qwen_image(path: Path, seed: int) -> None:
    """Assemble and save a tiny QwenImagePipeline."""
    reseed(seed, 0)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=64,  # 16 latent channels packed 2x2
        out_channels=16,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_TEXT_DIM,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
    )
    reseed(seed, 1)
    vae = AutoencoderKLQwenImage(
        base_dim=8,
        z_dim=16,
        dim_mult=[1, 2, 2, 2],
        num_res_blocks=1,
        # Three down-samplings, i.e. scale factor 8 like the real VAE; the time axis is never down-sampled
        # for single images, but the real checkpoint's flags are kept.
        temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 16,
        latents_std=[1.0] * 16,
    )
    reseed(seed, 2)
    text_encoder = _qwen_image_text_encoder()
    pipe = QwenImagePipeline(
        scheduler=_flow_match_scheduler(
            # Qwen-Image's published resolution-dependent shift schedule.
            base_image_seq_len=256,
            base_shift=0.5,
            max_image_seq_len=8192,
            max_shift=0.9,
            shift=1.0,
            shift_terminal=0.02,
            use_dynamic_shifting=True,
            time_shift_type="exponential",
        ),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_qwen_tokenizer(chat_template=chatml_template(vision=True)),
        transformer=transformer,
    )
    _save_pipeline(pipe, path)


def build_tiny_qwen_image(path: Path, *, seed: int = 0) -> Path:
    """Build (once) a tiny QwenImagePipeline at `path`: MMDiT, Qwen2.5-VL text encoder, Qwen2Tokenizer.

    Image sizes must be multiples of 16 (VAE scale factor 8 times the patch size 2).
    """
    return build_once(
        path,
        kind="qwen-image",
        version=_QWEN_IMAGE_VERSION,
        seed=seed,
        write=lambda p: _write_qwen_image(p, seed),
    )


# --- Flux.2 [klein] -------------------------------------------------------------------------------------


def _write_flux2_klein(path: Path, seed: int) -> None:
    """Assemble and save a tiny Flux2KleinPipeline (Flux.2 with a Qwen3 text encoder)."""
    reseed(seed, 0)
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=64,  # 16 latent channels packed 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        # Klein stacks three hidden-state layers of the text encoder as the caption features.
        joint_attention_dim=3 * _TEXT_DIM,
        timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4],
        guidance_embeds=False,
    )
    reseed(seed, 1)
    vae = AutoencoderKLFlux2(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=8,
        sample_size=32,
    )
    reseed(seed, 2)
    # The pipeline reads hidden states 9, 18 and 27 by default (`text_encoder_out_layers`), so the encoder
    # needs 27 layers for a call without that argument to work; at width 32 they still cost only ~1 MB.
    text_encoder = Qwen3ForCausalLM(_qwen3_config(num_hidden_layers=27))
    pipe = Flux2KleinPipeline(
        scheduler=_flow_match_scheduler(
            base_image_seq_len=256,
            base_shift=0.5,
            max_image_seq_len=4096,
            max_shift=1.15,
            shift=3.0,
            use_dynamic_shifting=True,
        ),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_qwen_tokenizer(chat_template=chatml_template(vision=False)),
        transformer=transformer,
        is_distilled=True,
    )
    _save_pipeline(pipe, path)


def build_tiny_flux2_klein(path: Path, *, seed: int = 0) -> Path:
    """Build (once) a tiny Flux2KleinPipeline at `path`: Flux.2 MMDiT, Qwen3ForCausalLM, Qwen2Tokenizer.

    Image sizes must be multiples of 16 (VAE scale factor 8 times the 2x2 latent packing).
    """
    return build_once(
        path,
        kind="flux2-klein",
        version=_FLUX2_VERSION,
        seed=seed,
        write=lambda p: _write_flux2_klein(p, seed),
    )
