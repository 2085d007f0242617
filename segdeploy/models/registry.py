"""Architectures by name, built from torchvision and segmentation-models-pytorch."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import segmentation_models_pytorch as smp
import torchvision.models.segmentation as tvseg
from torch import nn

from ..errors import SegdeployError
from .adapter import LogitsAdapter
from .fcn8s import FCN8s

# Short names for encoders that segmentation-models-pytorch reaches through timm.
ENCODER_ALIASES = {
    "mobilenet_v3": "tu-mobilenetv3_large_100",
    "mobilenet_v3_large": "tu-mobilenetv3_large_100",
    "mobilenet_v3_small": "tu-mobilenetv3_small_100",
}
SUGGESTED_ENCODERS = ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "mobilenet_v3")

Builder = Callable[[str | None, int, bool], nn.Module]


@dataclass(frozen=True)
class Architecture:
    name: str
    summary: str
    default_encoder: str | None
    encoder_stride: int  # stride of the deepest feature map
    head_stride: int  # stride at which class scores are formed before the final upsampling
    build: Builder


def _smp(cls: type[nn.Module], **kwargs: object) -> Builder:
    def build(encoder: str | None, num_classes: int, pretrained: bool) -> nn.Module:
        weights = "imagenet" if pretrained else None
        return cls(encoder_name=encoder, encoder_weights=weights, classes=num_classes, **kwargs)

    return build


def _fcn8s(encoder: str | None, num_classes: int, pretrained: bool) -> nn.Module:
    return FCN8s(str(encoder), num_classes, encoder_weights="imagenet" if pretrained else None)


def _fcn_resnet50(encoder: str | None, num_classes: int, pretrained: bool) -> nn.Module:
    backbone = tvseg.fcn.ResNet50_Weights.IMAGENET1K_V1 if pretrained else None
    return tvseg.fcn_resnet50(weights=None, weights_backbone=backbone, num_classes=num_classes, aux_loss=False)


def _lraspp(encoder: str | None, num_classes: int, pretrained: bool) -> nn.Module:
    backbone = tvseg.lraspp.MobileNet_V3_Large_Weights.IMAGENET1K_V1 if pretrained else None
    return tvseg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=backbone, num_classes=num_classes)


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in [
        Architecture("fcn", "FCN-8s: scores at strides 32/16/8 fused by upsample-and-add", "resnet18", 32, 8, _fcn8s),
        Architecture("fcn-resnet50", "torchvision FCN, dilated ResNet-50", None, 8, 8, _fcn_resnet50),
        Architecture("unet", "U-Net encoder-decoder with skip connections", "resnet18", 32, 1, _smp(smp.Unet)),
        Architecture("deeplabv3", "DeepLabv3: dilated encoder + ASPP", "resnet18", 8, 8, _smp(smp.DeepLabV3)),
        Architecture(
            "deeplabv3plus",
            "DeepLabv3+: ASPP + decoder with a stride-4 skip",
            "resnet18",
            16,
            4,
            _smp(smp.DeepLabV3Plus),
        ),
        Architecture("lraspp", "torchvision LR-ASPP, MobileNetV3-Large", None, 16, 8, _lraspp),
    ]
}


def resolve_encoder(architecture: Architecture, encoder: str | None) -> str | None:
    if architecture.default_encoder is None:
        if encoder not in (None, ""):
            raise SegdeployError(f"architecture '{architecture.name}' has a fixed encoder; remove encoder '{encoder}'")
        return None
    name = encoder or architecture.default_encoder
    return ENCODER_ALIASES.get(name, name)


def _user_factory(spec: str) -> Callable[..., nn.Module]:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SegdeployError(f"model '{spec}': cannot import module '{module_name}' ({exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise SegdeployError(f"model '{spec}': module '{module_name}' has no callable '{attr}'")
    return factory


HUB = ("huggingface.co", 443)  # where segmentation-models-pytorch fetches encoder weights


@contextlib.contextmanager
def _hub_offline_when_unreachable() -> Iterator[None]:
    """Without a network, huggingface_hub tries its requests (logging each failure to stderr) before it
    looks in its cache; when the hub cannot be reached within 3 s, the build uses its offline mode
    instead: cached weights load, missing ones fail at once, in one line."""
    import huggingface_hub.constants as hub

    try:
        socket.create_connection(HUB, timeout=3).close()
    except OSError:
        saved, hub.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE, True
        try:
            yield
        finally:
            hub.HF_HUB_OFFLINE = saved
        return
    yield


def build_model(architecture: str, encoder: str | None, num_classes: int, pretrained: bool = False) -> LogitsAdapter:
    """Build a registry architecture or a user factory ('package.module:factory') as a LogitsAdapter."""
    if ":" in architecture:
        factory = _user_factory(architecture)
        takes_classes = "num_classes" in inspect.signature(factory).parameters
        model = factory(num_classes=num_classes) if takes_classes else factory()
        if not isinstance(model, nn.Module):
            raise SegdeployError(f"model '{architecture}': factory returned {type(model).__name__}, not an nn.Module")
        return LogitsAdapter(model)
    if architecture not in ARCHITECTURES:
        raise SegdeployError(f"unknown architecture '{architecture}' (known: {', '.join(ARCHITECTURES)})")
    entry = ARCHITECTURES[architecture]
    resolved = resolve_encoder(entry, encoder)
    try:
        with _hub_offline_when_unreachable() if pretrained else contextlib.nullcontext():
            model = entry.build(resolved, num_classes, pretrained)
    except (KeyError, ValueError) as exc:
        raise SegdeployError(f"architecture '{architecture}' with encoder '{encoder}': {exc}") from None
    except Exception as exc:  # network and hub failures surface as many exception types
        if not pretrained:
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SegdeployError(
            f"--pretrained: could not fetch ImageNet weights for '{architecture}' ({reason}); "
            "this machine may be offline: train without --pretrained or pre-populate the torch/HF cache"
        ) from None
    return LogitsAdapter(model)
