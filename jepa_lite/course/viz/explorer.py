"""The masking explorer of chapter 01 (ipywidgets core controls, testable without a browser)."""

from __future__ import annotations

import html
import re

import torch

from jepa_lite import masking
from jepa_lite.course.viz.images import render_masks
from jepa_lite.course.viz.style import fig_to_png, load_image, sample_images


class MaskExplorer:
    """Interactive masking explorer: strategy, blocks, scale and aspect ranges, min context,
    seed, image, official quirks.

    ``explorer.widget`` is the ipywidgets box to display; ``explorer.controls`` maps names to
    controls; ``explorer.mask`` is the last drawn batch, ``explorer.png`` its rendering.
    """

    def __init__(self, image_size: int = 224, samples: int = 4, official: bool = False):
        import ipywidgets as w

        self.image_size, self.samples = image_size, samples
        self.grid = masking.grid_size(image_size)
        opts = masking.MaskOptions()
        n = self.grid[0] * self.grid[1]
        slider = {"continuous_update": False, "style": {"description_width": "initial"}}
        self.controls = {
            "strategy": w.Dropdown(options=list(masking.STRATEGIES), value="mixed",
                                   description="strategy"),
            "num_blocks": w.IntSlider(value=opts.num_blocks, min=1, max=8,
                                      description="blocks", **slider),
            "block_scale": w.FloatRangeSlider(value=opts.block_scale, min=0.02, max=0.6,
                                              step=0.01, description="block scale", **slider),
            "aspect_ratio": w.FloatRangeSlider(value=opts.aspect_ratio, min=0.25, max=4.0,
                                               step=0.05, description="aspect ratio",
                                               **slider),
            "min_context": w.IntSlider(value=masking.default_min_context(n), min=0, max=n - 1,
                                       description="min context", **slider),
            "mask_ratio": w.FloatSlider(value=opts.mask_ratio, min=0.05, max=0.95, step=0.05,
                                        description="mask ratio (random)", **slider),
            "multiblock_prob": w.FloatSlider(value=opts.multiblock_prob, min=0.0, max=1.0,
                                             step=0.05, description="P(multi-block) (mixed)",
                                             **slider),
            "seed": w.IntSlider(value=0, min=0, max=999, description="seed", **slider),
            "image": w.Dropdown(options=sample_images(), value="grace_hopper",
                                description="image"),
            "official": w.Checkbox(value=official, description="official code (quirks)"),
        }
        self.image = w.Image(format="png")
        self.status = w.HTML()
        self.mask: torch.Tensor | None = None
        self.error: str | None = None
        for c in self.controls.values():
            c.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([w.VBox(list(self.controls.values())[:5]),
                                      w.VBox(list(self.controls.values())[5:])]),
                              self.status, self.image])
        self.update()

    @property
    def png(self) -> bytes:
        return self.image.value

    def options(self) -> dict:
        c = self.controls
        return {"num_blocks": c["num_blocks"].value, "block_scale": tuple(c["block_scale"].value),
                "aspect_ratio": tuple(c["aspect_ratio"].value),
                "min_context": c["min_context"].value, "mask_ratio": c["mask_ratio"].value,
                "multiblock_prob": c["multiblock_prob"].value}

    def in_control_names(self, message: str) -> str:
        """A masking error with option names (``min_context=30``) replaced by the labels of
        the controls that set them (``'min context' = 30``)."""
        for name, control in self.controls.items():
            message = re.sub(rf"\b{name}\b(=?)", lambda m, c=control: f"'{c.description}'"
                             + (" = " if m.group(1) else ""), message)
        return message

    def _on_change(self, change) -> None:
        self.update()

    def update(self) -> None:
        """Redraw masks from the controls; impossible options are shown, not raised."""
        c = self.controls
        g = torch.Generator().manual_seed(c["seed"].value)
        try:
            self.mask = masking.sample_masks(self.samples, self.grid, c["strategy"].value, g,
                                             official=c["official"].value, **self.options())
            self.error = None
        except ValueError as e:  # said with the names of the explorer's own controls
            self.error = self.in_control_names(str(e))
            self.status.value = f"<b style='color:#b00'>{html.escape(self.error)}</b>"
            return
        img = load_image(c["image"].value, self.image_size)
        self.image.value = fig_to_png(render_masks(img, self.mask))
        fr = masking.target_fraction(self.mask)
        self.status.value = (f"{c['strategy'].value}: mean target fraction {fr.mean():.2f} "
                             f"over {self.samples} samples, grid {self.grid[0]}x{self.grid[1]}")
