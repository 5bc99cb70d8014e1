""" FAN: Fully Attentional Networks, and the STL token-head models, for timm

Papers:
    - `Understanding The Robustness in Vision Transformers` - https://arxiv.org/abs/2204.12451
    - `Fully Attentional Networks with Self-emerging Token Labeling` - https://arxiv.org/abs/2401.03844

@inproceedings{zhou2022understanding,
  title={Understanding The Robustness in Vision Transformers},
  author={Zhou, Daquan and Yu, Zhiding and Xie, Enze and Xiao, Chaowei and Anandkumar, Anima and Feng, Jiashi and Alvarez, Jose M},
  booktitle={International Conference on Machine Learning},
  year={2022}
}
@inproceedings{zhao2023fully,
  title={Fully Attentional Networks with Self-emerging Token Labeling},
  author={Zhao, Bingyin and Yu, Zhiding and Lan, Shiyi and Cheng, Yutao and Anandkumar, Anima and Lao, Yingjie and Alvarez, Jose M},
  booktitle={International Conference on Computer Vision},
  year={2023}
}

A clean-room implementation written for timm >= 1.0 from a description of the official NVlabs models. It keeps the
official state-dict layout (so the released checkpoints load strictly) and every numeric quirk of the trained
networks, while computing them without the official code's redundant work: attention through
`F.scaled_dot_product_attention`, the channel attention as a handful of fused reductions, no module state written
in `forward`, token grids passed as arguments.

Token-head models (`*_tl`: the FAN token labeler of STL stage 1, `*_stl`: the STL student of stage 2) add a
per-token classifier `aux_head`. Their `forward` returns `cls_logits + 0.5 * token_logits.max(1)` (the evaluation
rule behind STL's published numbers); `fuse_token_logits=False` selects the class head alone, `forward_dense`
returns both logits, and `set_token_label_training(True)` makes a training-mode `forward` return them too.

Dense prediction (`features_only=True`, `forward_intermediates`): every variant gives the same 4-level pyramid at
strides 4 / 8 / 16 / 32 (`FEATURE_STRIDES`), the layout of hierarchical backbones that segmentation decoders expect.
Hybrids: the two ConvNeXt stages (4, 8), the last FAN block (16) and its 2 x 2 max-pool (32); FAN's own mmdet / mmseg
backbones also take the stages and one late block (out_index 7 / 9 / 15 / 18). ViT variants: the blocks ending each
quarter of the depth, resampled without parameters to 4, 8, 16, 32 (bilinear x4, bilinear x2, as is, 2 x 2
max-pool), the BEiT / XCiT simple pyramid with its learned (de)convolutions left to the decoder, so pretrained state
dicts load unchanged.

Two explicit training arguments serve the other mixing methods (`fan_stl.stl`), without hooks or module state:
`token_mix=(own, partner)` mixes the tokens right after the patch embedding (MixToken), and `forward(x,
return_attn=True)` also returns the last class-attention block's class -> patch attention (PAL, TransMix).
"""
from contextlib import nullcontext
from functools import partial
from typing import Callable, ContextManager, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.fx._symbolic_trace import is_fx_symbolic_tracing

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerNorm2d, trunc_normal_, use_fused_attn
from timm.models import (
    build_model_with_cfg,
    checkpoint,
    generate_default_cfgs,
    register_model,
    register_model_deprecations,
)
from timm.models._features import feature_take_indices
from timm.models._features_fx import register_notrace_function
from timm.models.convnext import ConvNeXtStage
from timm.models.xcit import ClassAttentionBlock, PositionalEncodingFourier


__all__ = ['FAN']  # model_registry will add each entrypoint fn to this

TOKEN_STRIDE = 16
FEATURE_STRIDES = (4, 8, 16, 32)  # the feature pyramid of `forward_intermediates` / `features_only`


def _device_dtype(module: nn.Module) -> dict:
    param = next(module.parameters())
    return {'device': param.device, 'dtype': param.dtype}


@register_notrace_function  # FX: a leaf call, so the check still runs on real shapes
def check_input_size(x: torch.Tensor) -> None:
    """ Raise a clear error unless the input is a batch (B, C, H, W) of images whose height and width are positive
    multiples of the token stride (16). """
    if x.dim() != 4:
        raise ValueError(f'FAN models take a batch of images (B, C, H, W); got a {x.dim()}-D tensor. For one image '
                         'of shape (C, H, W), add the batch dimension: model(x.unsqueeze(0)).')
    H, W, stride = x.shape[-2], x.shape[-1], 16  # TOKEN_STRIDE (TorchScript cannot read module globals)
    if H % stride != 0 or W % stride != 0 or H < stride or W < stride:
        raise ValueError(
            f'FAN models need an input height and width that are positive multiples of the token stride {stride}; '
            f'got {H}x{W}. Resize or crop the images, e.g. to '
            f'{max(stride, H // stride * stride)}x{max(stride, W // stride * stride)}.')


def mix_token_map(x: torch.Tensor, own: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """ MixToken on a patch-embedded map: `own * x + (1 - own) * x[partner]` per token.

    Args:
        x: Patch embedding `(B, C, H, W)`.
        own: `(B, H * W)` share of each token (row-major grid) kept from the sample itself; 0 = the partner's token.
        partner: `(B,)` batch index of the sample whose tokens fill the rest.
    """
    B, _, H, W = x.shape
    if own.dim() != 2 or own.shape[0] != B or own.shape[1] != H * W or partner.dim() != 1 or partner.shape[0] != B:
        raise ValueError(
            f'token_mix for a batch of {B} on a {H}x{W} token grid must be (own ({B}, {H * W}), partner ({B},)); '
            f'got {list(own.shape)} and {list(partner.shape)}. Build it for the image size the model sees '
            '(one token per 16 pixels).')
    own = own.reshape(B, 1, H, W).to(x.dtype)
    return x * own + x[partner] * (1. - own)  # exact for own in {0, 1}: x * 1 + y * 0 == x


def pyramid_blocks(depth: int, hybrid: bool) -> Tuple[Optional[int], ...]:
    """ The FAN block feeding each pyramid level (None: a ConvNeXt stage of the hybrid stem). """
    if hybrid:
        return None, None, depth - 1, depth - 1
    return tuple(max(1, (k + 1) * depth // 4) - 1 for k in range(4))


def resample_to_stride(x: torch.Tensor, stride: int) -> torch.Tensor:
    """ A stride-16 token map (B, C, H, W) resampled without parameters to `stride` (4, 8, 16 or 32). """
    if stride < TOKEN_STRIDE:
        return F.interpolate(x, scale_factor=TOKEN_STRIDE // stride, mode='bilinear', align_corners=False)
    if stride > TOKEN_STRIDE:
        return F.max_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)
    return x


class ConvPatchEmbed(nn.Module):
    """ Four stride-2 3x3 conv + BatchNorm layers (GELU between them): image -> stride-16 feature map. """

    def __init__(self, in_chans: int = 3, embed_dim: int = 384, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        widths = (embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim)
        layers: List[nn.Module] = []
        prev = in_chans
        for i, width in enumerate(widths):
            if i:
                layers.append(nn.GELU())
            layers.append(nn.Sequential(
                nn.Conv2d(prev, width, kernel_size=3, stride=2, padding=1, bias=False, **dd),
                nn.BatchNorm2d(width, **dd),
            ))
            prev = width
        self.proj = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class UnbiasedLayerNorm2d(LayerNorm2d):
    """ LayerNorm over the channels of an NCHW tensor, normalising by the unbiased (n - 1) channel variance.

    The official hybrid stems normalise every tensor that is not NCHW-contiguous with `torch.var_mean` (unbiased),
    and every norm after the stem's first one receives such a tensor, so the trained weights expect this variant.
    With C channels, (x - mean) / sqrt(C / (C - 1) * var + eps) equals sqrt((C - 1) / C) * (x - mean) /
    sqrt(var + eps * (C - 1) / C): one fused `F.layer_norm` with a rescaled weight and eps.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C = self.normalized_shape[0]
        ratio = (C - 1) / C
        weight = self.weight * ratio ** 0.5 if self.weight is not None else None
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, weight, self.bias, self.eps * ratio)
        return x.permute(0, 3, 1, 2)


class ConvNeXtStem(nn.Module):
    """ The two-stage ConvNeXt trunk of the hybrid models (stride 4 and 8 feature maps). """

    def __init__(
            self,
            in_chans: int = 3,
            depths: Sequence[int] = (3, 3),
            dims: Sequence[int] = (128, 256),
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4, **dd),
            LayerNorm2d(dims[0], eps=1e-6, **dd),
        )
        stage_args = dict(ls_init_value=1e-6, conv_mlp=True, norm_layer=UnbiasedLayerNorm2d, **dd)
        self.stages = nn.Sequential(
            ConvNeXtStage(dims[0], dims[0], stride=1, depth=depths[0], **stage_args),
            ConvNeXtStage(dims[0], dims[1], stride=2, depth=depths[1], **stage_args),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class HybridEmbed(nn.Module):
    """ ConvNeXt trunk followed by a 2x2 stride-2 projection to the token width (token stride 16). """

    def __init__(
            self,
            in_chans: int = 3,
            embed_dim: int = 384,
            depths: Sequence[int] = (3, 3),
            dims: Sequence[int] = (128, 256),
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.backbone = ConvNeXtStem(in_chans, depths=depths, dims=dims, **dd)
        self.proj = nn.Conv2d(dims[-1], embed_dim, kernel_size=2, stride=2, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.backbone(x))


class TokenMixing(nn.Module):
    """ Multi-head self-attention over tokens with separate `q` and fused `kv` projections. """
    fused_attn: torch.jit.Final[bool]

    def __init__(
            self,
            dim: int,
            num_heads: int = 8,
            qkv_bias: bool = True,
            attn_drop: float = 0.,
            proj_drop: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        assert dim % num_heads == 0, f'dim {dim} must be divisible by num_heads {num_heads}'
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.fused_attn = use_fused_attn()
        self.q = nn.Linear(dim, dim, bias=qkv_bias, **dd)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias, **dd)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim, **dd)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.num_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(x).reshape(B, N, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = self.attn_drop(attn.softmax(dim=-1))
            x = attn @ v
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class DWConv(nn.Module):
    """ Depthwise 3x3 conv -> GELU -> BatchNorm -> depthwise 3x3 conv on a token sequence laid out as a grid. """

    def __init__(self, dim: int, device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim, **dd)
        self.act = nn.GELU()
        self.bn = nn.BatchNorm2d(dim, **dd)
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim, **dd)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        # (B, N, C) viewed as NCHW is already channels-last in memory: no copy on the way in or out
        x = x.transpose(1, 2).reshape(B, C, H, W)
        x = self.conv2(self.bn(self.act(self.conv1(x))))
        return x.flatten(2).transpose(1, 2)


class ValueMlp(nn.Module):
    """ The value path of channel processing: fc1 -> (+ gamma * DWConv) -> fc2.

    As in the trained official networks there is no activation after `fc1`; the only non-linearity is the GELU
    inside `DWConv`.
    """

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0., device=None, dtype=None):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(hidden_dim, **dd))
        self.fc1 = nn.Linear(dim, hidden_dim, **dd)
        self.dwconv = DWConv(hidden_dim, **dd)
        self.fc2 = nn.Linear(hidden_dim, dim, **dd)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        x = self.fc1(x)
        x = x + self.gamma * self.drop(self.dwconv(x, H, W))
        return self.drop(self.fc2(x))


class ChannelProcessing(nn.Module):
    """ Attentional channel processing (FAN paper Eq. 7, as trained).

    For the normalised input X (B, N, C) split into heads of d channels, with softmax taken over tokens:
        k[n, h]  = mean_j softmax_n(X)[n, h, j]
        A[h, j]  = temperature[h] * sigmoid(sum_n softmax_n(q(X))[n, h, j] * k[n, h])
        out      = A * norm_v(mlp_v(X))
    """

    def __init__(
            self,
            dim: int,
            num_heads: int = 8,
            mlp_ratio: float = 4.,
            qkv_bias: bool = True,
            attn_drop: float = 0.,
            drop: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        assert dim % num_heads == 0, f'dim {dim} must be divisible by num_heads {num_heads}'
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1, **dd))
        self.mlp_v = ValueMlp(dim, int(dim * mlp_ratio), drop=drop, **dd)
        self.norm_v = nn.LayerNorm(dim, **dd)  # eps 1e-5, unlike the blocks' norms
        self.q = nn.Linear(dim, dim, bias=qkv_bias, **dd)
        self.attn_drop = nn.Dropout(attn_drop)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        h = self.num_heads
        v = self.norm_v(self.mlp_v(x, H, W))
        q = self.q(x).softmax(dim=1).reshape(B, N, h, C // h)
        k = x.softmax(dim=1).reshape(B, N, h, C // h).mean(dim=-1)
        attn = torch.einsum('bnhd,bnh->bhd', q, k).sigmoid() * self.temperature.reshape(1, h, 1)
        attn = self.attn_drop(attn)
        return v * attn.reshape(B, 1, C)


class FANBlock(nn.Module):
    """ Pre-norm block: token mixing (self-attention) then channel processing, each with layer scale. """

    def __init__(
            self,
            dim: int,
            num_heads: int,
            mlp_ratio: float = 4.,
            qkv_bias: bool = True,
            proj_drop: float = 0.,
            attn_drop: float = 0.,
            drop_path: float = 0.,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            eta: float = 1.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.gamma1 = nn.Parameter(eta * torch.ones(dim, **dd))
        self.gamma2 = nn.Parameter(eta * torch.ones(dim, **dd))
        self.norm1 = norm_layer(dim, **dd)
        self.attn = TokenMixing(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop, **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer(dim, **dd)
        self.mlp = ChannelProcessing(
            dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, attn_drop=attn_drop, drop=proj_drop,
            **dd)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        x = x + self.drop_path(self.gamma1 * self.attn(self.norm1(x)))
        x = x + self.drop_path(self.gamma2 * self.mlp(self.norm2(x), H, W))
        return x


class FAN(nn.Module):
    """ Fully Attentional Network (ViT or ConvNeXt-hybrid stem), optionally with a per-token STL head. """

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = 'token',
            embed_dim: int = 384,
            depth: int = 12,
            num_heads: int = 8,
            mlp_ratio: float = 4.,
            qkv_bias: bool = True,
            stem_depths: Optional[Sequence[int]] = None,
            cls_attn_layers: int = 2,
            eta: float = 1.,
            drop_rate: float = 0.,
            pos_drop_rate: float = 0.,
            proj_drop_rate: float = 0.,
            attn_drop_rate: float = 0.,
            drop_path_rate: float = 0.,
            head_init_scale: float = 1.,
            aux_head: bool = False,
            fuse_token_logits: bool = True,
            device=None,
            dtype=None,
    ):
        """
        Args:
            in_chans: Number of input image channels.
            num_classes: Number of classes of the class head (and of the token head, if any).
            global_pool: Pooling before the head: 'token' (class token, as trained), 'avg' (mean of patch
                tokens) or '' (none, all tokens are returned).
            embed_dim: Token width.
            depth: Number of FAN blocks.
            num_heads: Attention heads of the FAN blocks and the class-attention blocks.
            mlp_ratio: Hidden-width ratio of the value MLP and the class-attention MLP.
            qkv_bias: Bias in the q/kv projections.
            stem_depths: Block counts of the two ConvNeXt stages of a hybrid stem; None for the ViT conv stem.
            cls_attn_layers: Number of class-attention blocks.
            eta: Layer-scale initial value.
            drop_rate: Classifier dropout.
            pos_drop_rate: Dropout after the positional encoding.
            proj_drop_rate: Dropout after projections and MLPs.
            attn_drop_rate: Attention dropout.
            drop_path_rate: Stochastic depth rate, the same for every FAN block (as trained).
            head_init_scale: Scale of the initial classifier weights.
            aux_head: Add the per-token classifier of the STL token labeler / student.
            fuse_token_logits: For token-head models, `forward` returns `cls + 0.5 * max_n(token)` logits when True
                (STL's evaluation rule) and the class-head logits alone when False.
        """
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        assert global_pool in ('', 'avg', 'token'), f'global_pool must be "", "avg" or "token", not {global_pool!r}'
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dim
        self.num_prefix_tokens = 1
        self.fuse_token_logits = fuse_token_logits
        self.token_label_training = False
        self.grad_checkpointing = False
        norm_layer = partial(nn.LayerNorm, eps=1e-6)

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim, **dd))
        if stem_depths is None:
            self.patch_embed = ConvPatchEmbed(in_chans, embed_dim, **dd)
        else:
            self.patch_embed = HybridEmbed(in_chans, embed_dim, depths=stem_depths, **dd)
        self.pos_embed = PositionalEncodingFourier(hidden_dim=32, dim=embed_dim, **dd)
        self.pos_drop = nn.Dropout(pos_drop_rate)
        block_args = dict(
            num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, proj_drop=proj_drop_rate,
            attn_drop=attn_drop_rate, norm_layer=norm_layer, eta=eta, **dd)
        self.blocks = nn.ModuleList([
            FANBlock(embed_dim, drop_path=drop_path_rate, **block_args) for _ in range(depth)])
        self.feature_blocks = pyramid_blocks(depth, hybrid=stem_depths is not None)
        self.feature_info = [
            dict(num_chs=embed_dim, reduction=stride, module=f'blocks.{block}') if block is not None else
            dict(num_chs=128 * 2 ** level, reduction=stride, module=f'patch_embed.backbone.stages.{level}')
            for level, (stride, block) in enumerate(zip(FEATURE_STRIDES, self.feature_blocks))]
        self.cls_attn_blocks = nn.ModuleList([
            ClassAttentionBlock(embed_dim, tokens_norm=True, **block_args) for _ in range(cls_attn_layers)])
        self.norm = norm_layer(embed_dim, **dd)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes, **dd) if num_classes > 0 else nn.Identity()
        if aux_head:
            self.aux_head = nn.Linear(embed_dim, num_classes, **dd) if num_classes > 0 else nn.Identity()
        else:
            self.aux_head = None

        if self.cls_token.device.type != 'meta':
            self.init_weights(head_init_scale)

    @torch.no_grad()
    def init_weights(self, head_init_scale: float = 1.) -> None:
        """ Initialise for training from scratch (pretrained weights overwrite all of it). """
        trunc_normal_(self.cls_token, std=.02)
        for name, module in self.named_modules():
            stem_conv = name.startswith('patch_embed.backbone') and isinstance(module, nn.Conv2d)
            if isinstance(module, nn.Linear) or stem_conv:
                trunc_normal_(module.weight, std=.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, DWConv):
                for conv in (module.conv1, module.conv2):
                    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
                    nn.init.normal_(conv.weight, 0, (2. / fan_out) ** 0.5)
                    nn.init.zeros_(conv.bias)
        if isinstance(self.head, nn.Linear):
            self.head.weight.mul_(head_init_scale)
            self.head.bias.mul_(head_init_scale)

    @torch.jit.ignore
    def no_weight_decay(self):
        # As trained: only the class token is exempt (with 1-D params, which the optimizer factory exempts anyway).
        return {'cls_token'}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False):
        return dict(
            stem=r'^cls_token|^pos_embed|^patch_embed',
            blocks=[(r'^blocks\.(\d+)', None), (r'^cls_attn_blocks\.(\d+)', (99999,)), (r'^norm', (99999,))],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable
        if isinstance(self.patch_embed, HybridEmbed):
            for stage in self.patch_embed.backbone.stages:
                stage.grad_checkpointing = enable

    @torch.jit.ignore
    def set_token_label_training(self, enable: bool = True) -> None:
        """ Make a training-mode `forward` return `(cls_logits, token_logits)` for the token-labeling loss. """
        if enable and self.aux_head is None:
            raise ValueError(
                'This FAN model has no per-token head; token-label training needs a token-head model '
                '(a `*_tl` or `*_stl` variant, or create_model(..., aux_head=True)).')
        self.token_label_training = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """ Re-create the class head (and the token head, if present) for `num_classes`. """
        dd = _device_dtype(self.patch_embed)
        self.num_classes = num_classes
        if global_pool is not None:
            assert global_pool in ('', 'avg', 'token'), 'global_pool must be "", "avg" or "token"'
            self.global_pool = global_pool
        self.head = nn.Linear(self.num_features, num_classes, **dd) if num_classes > 0 else nn.Identity()
        self.head.train(self.training)
        if self.aux_head is not None:
            self.aux_head = nn.Linear(self.num_features, num_classes, **dd) if num_classes > 0 else nn.Identity()
            self.aux_head.train(self.training)

    def _tokens(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """ Flatten a (B, C, H, W) map to tokens and add the Fourier positional encoding of its grid. """
        x = x.flatten(2).transpose(1, 2)
        pos = self.pos_embed(1, H, W).flatten(2).transpose(1, 2)
        return self.pos_drop(x + pos)

    def _forward_cls(self, x: torch.Tensor) -> torch.Tensor:
        """ Append the class token after the FAN blocks and run the class-attention blocks. """
        return self._forward_cls_attn(x, False)[0]

    def _forward_cls_attn(self, x: torch.Tensor, return_attn: bool) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """ `_forward_cls`, plus (when asked) the last class-attention block's class -> patch attention `(B, N)`. """
        if self.cls_token is None:
            return x, None
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        attn: Optional[torch.Tensor] = None
        for i, blk in enumerate(self.cls_attn_blocks):
            if return_attn and i == len(self.cls_attn_blocks) - 1:
                with torch.no_grad():  # the class query's softmax row, recomputed from the block's own q / k
                    xn = blk.norm1(x)
                    B, N, C = xn.shape
                    heads = blk.attn.num_heads
                    q = blk.attn.q(xn[:, 0]).reshape(B, heads, 1, C // heads)
                    k = blk.attn.k(xn).reshape(B, N, heads, C // heads).transpose(1, 2)
                    scores = (q * blk.attn.scale) @ k.transpose(-2, -1)
                    attn = scores.float().softmax(dim=-1).mean(dim=1)[:, 0, 1:]
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x)
            else:
                x = blk(x)
        return x, attn

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """ Forward features that returns intermediates.

        Feature indices run over `feature_info`, the pyramid at strides 4 / 8 / 16 / 32 (module docstring): for
        hybrids the two ConvNeXt stages then the last FAN block and its max-pool; for ViT variants the blocks ending
        each quarter of the depth, resampled to the level's stride (`feature_blocks` names the block of each level).

        Args:
            x: Input image tensor.
            indices: Take last n features if int, all if None, select matching indices if sequence.
            norm: Apply the final norm layer to the FAN-block features.
            stop_early: Stop iterating over blocks when the last desired intermediate is reached.
            output_fmt: 'NCHW' maps or 'NLC' token sequences.
            intermediates_only: Only return intermediate features.
        """
        assert output_fmt in ('NCHW', 'NLC'), 'Output format must be one of NCHW or NLC.'
        check_input_size(x)
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)
        taken = {}

        if isinstance(self.patch_embed, HybridEmbed):
            backbone = self.patch_embed.backbone
            x = backbone.stem(x)
            for i, stage in enumerate(backbone.stages):
                x = stage(x)
                if i in take_indices:
                    taken[i] = x
            x = self.patch_embed.proj(x)
        else:
            x = self.patch_embed(x)
        B, _, H, W = x.shape
        x = self._tokens(x, H, W)

        blocks = self.blocks
        if stop_early and not torch.jit.is_scripting():
            last = [self.feature_blocks[i] for i in take_indices if self.feature_blocks[i] is not None]
            blocks = self.blocks[:max(last) + 1 if last else 0]
        for i, blk in enumerate(blocks):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, H, W)
            else:
                x = blk(x, H, W)
            for level in take_indices:
                if self.feature_blocks[level] == i:
                    y = (self.norm(x) if norm else x).transpose(1, 2).reshape(B, -1, H, W)
                    taken[level] = resample_to_stride(y, self.feature_info[level]['reduction'])
        intermediates = [taken[i] for i in take_indices]
        if output_fmt == 'NLC':
            intermediates = [y.flatten(2).transpose(1, 2) for y in intermediates]

        if intermediates_only:
            return intermediates
        x = self.norm(self._forward_cls(x))
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """ Prune the layers not needed for the requested intermediates. """
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)
        last = [self.feature_blocks[i] for i in take_indices if self.feature_blocks[i] is not None]
        self.blocks = self.blocks[:max(last) + 1 if last else 0]
        self.feature_info = self.feature_info[:max_index + 1]
        self.feature_blocks = self.feature_blocks[:max_index + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.cls_attn_blocks = nn.ModuleList()
            self.cls_token = None
            self.num_prefix_tokens = 0
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(
            self,
            x: torch.Tensor,
            token_mix: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> torch.Tensor:
        """ Image -> normalised tokens (B, 1 + N, C), class token first.

        `token_mix = (own (B, N), partner (B,))` mixes the tokens right after the patch embedding (for hybrids:
        after the ConvNeXt stem and its projection), before the positional encoding: MixToken (see `mix_token_map`).
        """
        return self._forward_features_attn(x, token_mix, False)[0]

    def _forward_features_attn(
            self,
            x: torch.Tensor,
            token_mix: Optional[Tuple[torch.Tensor, torch.Tensor]],
            return_attn: bool,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        check_input_size(x)
        x = self.patch_embed(x)
        H, W = x.shape[-2:]
        if token_mix is not None:
            x = mix_token_map(x, token_mix[0], token_mix[1])
        x = self._tokens(x, H, W)
        for blk in self.blocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, H, W)
            else:
                x = blk(x, H, W)
        x, attn = self._forward_cls_attn(x, return_attn)
        return self.norm(x), attn

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_pool == 'avg':
            return x[:, self.num_prefix_tokens:].mean(dim=1)
        if self.global_pool == 'token':
            return x[:, 0]
        return x

    def forward_head(
            self,
            x: torch.Tensor,
            pre_logits: bool = False,
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """ Tokens -> logits (see the module docstring for the token-head output rule). """
        logits = self.head_drop(self._pool(x))
        if pre_logits:
            return logits
        logits = self.head(logits)
        if self.aux_head is None or self.num_classes == 0 or not self.global_pool:
            return logits
        token_logits = self.aux_head(x[:, self.num_prefix_tokens:])
        if self.token_label_training and self.training and not torch.jit.is_scripting():
            return logits, token_logits
        if self.fuse_token_logits:
            return logits + 0.5 * token_logits.amax(dim=1)  # STL's evaluation rule
        return logits

    def forward_dense(
            self,
            x: torch.Tensor,
            token_mix: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """ Image -> `(cls_logits (B, K), token_logits (B, N, K))`, whatever the mode and flags.

        `token_mix`: MixToken after the patch embedding, as in `forward_features`. The token logits are returned
        as computed (position n of sample b may hold the partner's token); `fan_stl.stl.mixtoken.unmix_tokens`
        realigns them with each image.
        """
        if self.aux_head is None or self.num_classes == 0:
            raise ValueError(
                'forward_dense needs a token-head model with classifier heads (a `*_tl` / `*_stl` variant, '
                'num_classes > 0).')
        x = self.forward_features(x, token_mix)
        cls_logits = self.head(self.head_drop(self._pool(x)))
        return cls_logits, self.aux_head(x[:, self.num_prefix_tokens:])

    def forward(
            self,
            x: torch.Tensor,
            token_mix: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
            return_attn: bool = False,
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor],
               Tuple[Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]], torch.Tensor]]:
        """ Image -> logits (see the module docstring).

        Args:
            x: Images `(B, C, H, W)`.
            token_mix: MixToken `(own (B, N), partner (B,))` after the patch embedding, as in `forward_features`.
            return_attn: Return `(output, attn)`: `attn (B, N)` is the class-token attention of the last
                class-attention block over the patch tokens, averaged over heads and detached (for PAL / TransMix;
                the class token's attention to itself is left out, so a row sums to slightly less than 1).
            Both training arguments are ignored while FX traces the model (feature extraction traces inference).
        """
        if not torch.jit.is_scripting():
            if is_fx_symbolic_tracing():  # FX traces the inference graph; the training arguments stay out of it
                token_mix, return_attn = None, False
        x, attn = self._forward_features_attn(x, token_mix, return_attn)
        out = self.forward_head(x)
        if return_attn:
            if attn is None:
                raise ValueError('return_attn needs the class-attention blocks (this model was pruned).')
            return out, attn
        return out


def checkpoint_filter_fn(state_dict: dict, model: FAN) -> dict:
    """ Convert an official FAN / STL checkpoint (flat or a training dict) to this model's layout.

    Accepts the sub-dicts `state_dict_ema` / `model_ema` / `state_dict` / `model` (EMA first), strips `module.` and
    `_orig_mod.` prefixes, renames the early `pos_embeder.` keys, splits fused class-attention `qkv` weights, and
    drops `aux_head.*` when a token-model checkpoint is loaded into a model without a token head.
    """
    for key in ('state_dict_ema', 'model_ema', 'state_dict', 'model'):
        if isinstance(state_dict.get(key), dict):
            state_dict = state_dict[key]
            break
    has_aux = getattr(model, 'aux_head', None) is not None
    out = {}
    for k, v in state_dict.items():
        for prefix in ('module.', '_orig_mod.'):
            if k.startswith(prefix):
                k = k[len(prefix):]
        k = k.replace('pos_embeder.', 'pos_embed.')
        if k.startswith('aux_head.') and not has_aux:
            continue
        if '.attn.qkv.' in k and k.startswith('cls_attn_blocks.'):
            for name, part in zip(('q', 'k', 'v'), v.chunk(3, dim=0)):
                out[k.replace('.qkv.', f'.{name}.')] = part
            continue
        out[k] = v
    return out


# How pretrained weights are found, fetched and checked: `fan_stl.weights` installs it when `import fan_stl` runs
# (this module imports nothing above it). hook(variant, pretrained, kwargs, filter_fn) may edit `kwargs` (the
# pretrained cfg overlay) and returns the context the model is built in and the filter that maps its checkpoint.
PretrainedHook = Callable[[str, bool, dict, Callable], Tuple[ContextManager, Callable]]
_pretrained_hook: Optional[PretrainedHook] = None


def set_pretrained_hook(hook: Optional[PretrainedHook]) -> None:
    """ Install how `create_model(..., pretrained=True)` finds FAN weights; without one, timm's own url / Hub loading
    of `default_cfgs` applies. """
    global _pretrained_hook
    _pretrained_hook = hook


def _create_fan(variant: str, pretrained: bool = False, **kwargs) -> FAN:
    out_indices = kwargs.pop('out_indices', tuple(range(len(FEATURE_STRIDES))))
    context, filter_fn = nullcontext(), checkpoint_filter_fn
    if _pretrained_hook is not None:
        context, filter_fn = _pretrained_hook(variant, pretrained, kwargs, checkpoint_filter_fn)
    with context:
        return build_model_with_cfg(
            FAN,
            variant,
            pretrained,
            pretrained_filter_fn=filter_fn,
            feature_cfg=dict(out_indices=out_indices, feature_cls='getter'),
            **kwargs,
        )


def _cfg(url: str = '', **kwargs) -> dict:
    return {
        'url': url,
        'num_classes': 1000,
        'input_size': (3, 224, 224),
        'pool_size': None,
        'crop_pct': 1.0,
        'interpolation': 'bicubic',
        'fixed_input_size': False,
        'mean': IMAGENET_DEFAULT_MEAN,
        'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'patch_embed.proj.0.0',
        'classifier': 'head',
        'license': 'other',
        'paper_ids': 'arXiv:2204.12451',
        'paper_name': 'Understanding The Robustness in Vision Transformers',
        'origin_url': 'https://github.com/NVlabs/FAN',
        **kwargs,
    }


def _hybrid_cfg(url: str = '', **kwargs) -> dict:
    return _cfg(url=url, first_conv='patch_embed.backbone.stem.0', **kwargs)


def _stl_cfg(url: str = '', **kwargs) -> dict:
    return _hybrid_cfg(
        url=url,
        classifier=('head', 'aux_head'),
        license='cc-by-nc-sa-4.0',
        paper_ids='arXiv:2401.03844',
        paper_name='Fully Attentional Networks with Self-emerging Token Labeling',
        origin_url='https://github.com/NVlabs/STL',
        **kwargs,
    )


_SIZES = {'t': 'tiny_8', 's': 'small_12', 'b': 'base_16', 'l': 'large_16'}
_FAN_RELEASE = 'https://github.com/zhoudaquan/fully_attentional_network_ckpt/releases/download/v1.0.0/'

# Per architecture the first tag listed is the default: its best IN-1K classifier at 224 px. Every released weight
# has a Hub copy `fan-stl/<architecture>.<tag>`; the FAN files also have the authors' URL, the STL files live on the
# authors' Google Drive, which `fan_stl.weights` fetches (see `set_pretrained_hook`). The STL weights are registered
# under their short and long names. This table equals `fan_stl.weights.released.RELEASED_WEIGHTS` (tested).
default_cfgs = generate_default_cfgs({
    'fan_tiny_12_p16_224.in1k': _cfg(
        hf_hub_id='fan-stl/fan_tiny_12_p16_224.in1k',
        url=_FAN_RELEASE + 'fan_vit_tiny.pth.tar'),
    'fan_small_12_p16_224.in1k': _cfg(
        hf_hub_id='fan-stl/fan_small_12_p16_224.in1k',
        url=_FAN_RELEASE + 'fan_vit_small.pth.tar'),
    'fan_base_18_p16_224.in1k': _cfg(
        hf_hub_id='fan-stl/fan_base_18_p16_224.in1k',
        url=_FAN_RELEASE + 'fan_vit_base.pth.tar'),
    'fan_tiny_8_p4_hybrid.in1k': _hybrid_cfg(
        hf_hub_id='fan-stl/fan_tiny_8_p4_hybrid.in1k',
        url=_FAN_RELEASE + 'fan_hybrid_tiny.pth.tar'),
    'fan_small_12_p4_hybrid.in1k': _hybrid_cfg(
        hf_hub_id='fan-stl/fan_small_12_p4_hybrid.in1k',
        url=_FAN_RELEASE + 'fan_hybrid_small.pth.tar'),
    'fan_base_16_p4_hybrid.in22k_ft_in1k': _hybrid_cfg(
        hf_hub_id='fan-stl/fan_base_16_p4_hybrid.in22k_ft_in1k',
        url=_FAN_RELEASE + 'fan_hybrid_base_in22k_1k.pth.tar'),
    'fan_base_16_p4_hybrid.in22k_ft_in1k_384': _hybrid_cfg(
        hf_hub_id='fan-stl/fan_base_16_p4_hybrid.in22k_ft_in1k_384',
        url=_FAN_RELEASE + 'fan_hybrid_base_in22k_1k_384.pth.tar',
        input_size=(3, 384, 384)),
    'fan_base_16_p4_hybrid.in1k': _hybrid_cfg(
        hf_hub_id='fan-stl/fan_base_16_p4_hybrid.in1k',
        url=_FAN_RELEASE + 'fan_hybrid_base.pth.tar'),
    'fan_large_16_p4_hybrid.in22k_ft_in1k': _hybrid_cfg(
        hf_hub_id='fan-stl/fan_large_16_p4_hybrid.in22k_ft_in1k',
        url=_FAN_RELEASE + 'fan_hybrid_large_in22k_1k.pth.tar'),
    'fan_large_16_p4_hybrid.in22k_ft_in1k_384': _hybrid_cfg(
        hf_hub_id='fan-stl/fan_large_16_p4_hybrid.in22k_ft_in1k_384',
        url=_FAN_RELEASE + 'fan_hybrid_large_in22k_1k_384.pth.tar',
        input_size=(3, 384, 384)),
    'fan_t_hybrid_tl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_t_hybrid_tl.in1k'),
    'fan_tiny_8_p4_hybrid_tl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_t_hybrid_tl.in1k'),
    'fan_s_hybrid_tl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_s_hybrid_tl.in1k'),
    'fan_small_12_p4_hybrid_tl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_s_hybrid_tl.in1k'),
    'fan_b_hybrid_tl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_b_hybrid_tl.in1k'),
    'fan_base_16_p4_hybrid_tl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_b_hybrid_tl.in1k'),
    'fan_l_hybrid_tl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_l_hybrid_tl.in1k'),
    'fan_large_16_p4_hybrid_tl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_l_hybrid_tl.in1k'),
    'fan_t_hybrid_stl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_t_hybrid_stl.in1k'),
    'fan_tiny_8_p4_hybrid_stl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_t_hybrid_stl.in1k'),
    'fan_s_hybrid_stl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_s_hybrid_stl.in1k'),
    'fan_small_12_p4_hybrid_stl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_s_hybrid_stl.in1k'),
    'fan_b_hybrid_stl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_b_hybrid_stl.in1k'),
    'fan_base_16_p4_hybrid_stl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_b_hybrid_stl.in1k'),
    'fan_l_hybrid_stl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_l_hybrid_stl.in1k'),
    'fan_large_16_p4_hybrid_stl.in1k': _stl_cfg(
        hf_hub_id='fan-stl/fan_l_hybrid_stl.in1k'),

    'fan_large_24_p16_224': _cfg(),  # the authors' FAN-L-ViT link is empty: no weights
})


_VIT_ARGS = {
    'fan_tiny_12_p16_224': dict(embed_dim=192, depth=12, num_heads=4),
    'fan_small_12_p16_224': dict(embed_dim=384, depth=12, num_heads=8),
    'fan_base_18_p16_224': dict(embed_dim=448, depth=18, num_heads=8),
    'fan_large_24_p16_224': dict(embed_dim=480, depth=24, num_heads=10),
}
_HYBRID_ARGS = {
    'tiny_8': dict(embed_dim=192, depth=8, num_heads=8, stem_depths=(3, 3)),
    'small_12': dict(embed_dim=384, depth=10, num_heads=8, stem_depths=(3, 3)),
    'base_16': dict(embed_dim=448, depth=16, num_heads=8, stem_depths=(3, 3)),
    'large_16': dict(embed_dim=480, depth=22, num_heads=10, stem_depths=(3, 5)),
}


def _vit(variant: str, pretrained: bool, kwargs: dict) -> FAN:
    return _create_fan(variant, pretrained=pretrained, **dict(_VIT_ARGS[variant], **kwargs))


def _hybrid(variant: str, size: str, pretrained: bool, kwargs: dict, **extra) -> FAN:
    return _create_fan(variant, pretrained=pretrained, **dict(_HYBRID_ARGS[size], **extra, **kwargs))


@register_model
def fan_tiny_12_p16_224(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-T-ViT: 192 wide, 12 blocks, 4 heads, conv patch stem. """
    return _vit('fan_tiny_12_p16_224', pretrained, kwargs)


@register_model
def fan_small_12_p16_224(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-S-ViT: 384 wide, 12 blocks, 8 heads, conv patch stem. """
    return _vit('fan_small_12_p16_224', pretrained, kwargs)


@register_model
def fan_base_18_p16_224(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-B-ViT: 448 wide, 18 blocks, 8 heads, conv patch stem. """
    return _vit('fan_base_18_p16_224', pretrained, kwargs)


@register_model
def fan_large_24_p16_224(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-L-ViT: 480 wide, 24 blocks, 10 heads, conv patch stem (no released weights). """
    return _vit('fan_large_24_p16_224', pretrained, kwargs)


@register_model
def fan_tiny_8_p4_hybrid(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-T-Hybrid: ConvNeXt [3, 3] stem, 192 wide, 8 blocks, 8 heads. """
    return _hybrid('fan_tiny_8_p4_hybrid', 'tiny_8', pretrained, kwargs)


@register_model
def fan_small_12_p4_hybrid(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-S-Hybrid: ConvNeXt [3, 3] stem, 384 wide, 10 blocks (despite the name), 8 heads. """
    return _hybrid('fan_small_12_p4_hybrid', 'small_12', pretrained, kwargs)


@register_model
def fan_base_16_p4_hybrid(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-B-Hybrid: ConvNeXt [3, 3] stem, 448 wide, 16 blocks, 8 heads. """
    return _hybrid('fan_base_16_p4_hybrid', 'base_16', pretrained, kwargs)


@register_model
def fan_large_16_p4_hybrid(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-L-Hybrid: ConvNeXt [3, 5] stem, 480 wide, 22 blocks (despite the name), 10 heads. """
    return _hybrid('fan_large_16_p4_hybrid', 'large_16', pretrained, kwargs, head_init_scale=0.001)


@register_model
def fan_tiny_8_p4_hybrid_tl(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-T-Hybrid token labeler (STL stage 1): FAN-T-Hybrid + per-token head. """
    return _hybrid('fan_tiny_8_p4_hybrid_tl', 'tiny_8', pretrained, kwargs, aux_head=True)


@register_model
def fan_small_12_p4_hybrid_tl(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-S-Hybrid token labeler (STL stage 1): FAN-S-Hybrid + per-token head. """
    return _hybrid('fan_small_12_p4_hybrid_tl', 'small_12', pretrained, kwargs, aux_head=True)


@register_model
def fan_base_16_p4_hybrid_tl(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-B-Hybrid token labeler (STL stage 1): FAN-B-Hybrid + per-token head. """
    return _hybrid('fan_base_16_p4_hybrid_tl', 'base_16', pretrained, kwargs, aux_head=True)


@register_model
def fan_large_16_p4_hybrid_tl(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-L-Hybrid token labeler (STL stage 1): FAN-L-Hybrid + per-token head. """
    return _hybrid('fan_large_16_p4_hybrid_tl', 'large_16', pretrained, kwargs, aux_head=True)


@register_model
def fan_tiny_8_p4_hybrid_stl(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-T-Hybrid STL student (stage 2): FAN-T-Hybrid + per-token head. """
    return _hybrid('fan_tiny_8_p4_hybrid_stl', 'tiny_8', pretrained, kwargs, aux_head=True)


@register_model
def fan_small_12_p4_hybrid_stl(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-S-Hybrid STL student (stage 2): FAN-S-Hybrid + per-token head. """
    return _hybrid('fan_small_12_p4_hybrid_stl', 'small_12', pretrained, kwargs, aux_head=True)


@register_model
def fan_base_16_p4_hybrid_stl(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-B-Hybrid STL student (stage 2): FAN-B-Hybrid + per-token head. """
    return _hybrid('fan_base_16_p4_hybrid_stl', 'base_16', pretrained, kwargs, aux_head=True)


@register_model
def fan_large_16_p4_hybrid_stl(pretrained: bool = False, **kwargs) -> FAN:
    """ FAN-L-Hybrid STL student (stage 2): FAN-L-Hybrid + per-token head. """
    return _hybrid('fan_large_16_p4_hybrid_stl', 'large_16', pretrained, kwargs, aux_head=True)


@register_model
def fan_t_hybrid_tl(pretrained: bool = False, **kwargs) -> FAN:
    """ Short name of `fan_tiny_8_p4_hybrid_tl`. """
    return _hybrid('fan_t_hybrid_tl', 'tiny_8', pretrained, kwargs, aux_head=True)


@register_model
def fan_s_hybrid_tl(pretrained: bool = False, **kwargs) -> FAN:
    """ Short name of `fan_small_12_p4_hybrid_tl`. """
    return _hybrid('fan_s_hybrid_tl', 'small_12', pretrained, kwargs, aux_head=True)


@register_model
def fan_b_hybrid_tl(pretrained: bool = False, **kwargs) -> FAN:
    """ Short name of `fan_base_16_p4_hybrid_tl`. """
    return _hybrid('fan_b_hybrid_tl', 'base_16', pretrained, kwargs, aux_head=True)


@register_model
def fan_l_hybrid_tl(pretrained: bool = False, **kwargs) -> FAN:
    """ Short name of `fan_large_16_p4_hybrid_tl`. """
    return _hybrid('fan_l_hybrid_tl', 'large_16', pretrained, kwargs, aux_head=True)


@register_model
def fan_t_hybrid_stl(pretrained: bool = False, **kwargs) -> FAN:
    """ Short name of `fan_tiny_8_p4_hybrid_stl`. """
    return _hybrid('fan_t_hybrid_stl', 'tiny_8', pretrained, kwargs, aux_head=True)


@register_model
def fan_s_hybrid_stl(pretrained: bool = False, **kwargs) -> FAN:
    """ Short name of `fan_small_12_p4_hybrid_stl`. """
    return _hybrid('fan_s_hybrid_stl', 'small_12', pretrained, kwargs, aux_head=True)


@register_model
def fan_b_hybrid_stl(pretrained: bool = False, **kwargs) -> FAN:
    """ Short name of `fan_base_16_p4_hybrid_stl`. """
    return _hybrid('fan_b_hybrid_stl', 'base_16', pretrained, kwargs, aux_head=True)


@register_model
def fan_l_hybrid_stl(pretrained: bool = False, **kwargs) -> FAN:
    """ Short name of `fan_large_16_p4_hybrid_stl`. """
    return _hybrid('fan_l_hybrid_stl', 'large_16', pretrained, kwargs, aux_head=True)


# The official code registers one `_token` architecture for both STL stages; resolve it to the student.
register_model_deprecations(__name__, {
    f'fan_{size}_p4_hybrid_token': f'fan_{size}_p4_hybrid_stl' for size in _SIZES.values()
})
