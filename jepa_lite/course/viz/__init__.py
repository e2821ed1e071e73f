"""Figures and the interactive explorers used by the chapters, one module per topic:
``style`` (colours, line styles, the sample images), ``images`` (masks on images, the data
sets: chapters 00-01), ``overview`` (chapter 00's map), ``encoder`` (the sparse encoder and
the predictor: chapters 02-04), ``training`` (schedules, collapse curves, spectra: chapters 04,
07, 08), ``evaluation`` (probes, comparisons, ablations, sweeps: chapters 05-09), ``ijepa``
(I-JEPA beside CNN-JEPA: chapter 10) and ``explorer`` (chapter 01's widget). Every name is
also here: ``viz.fig_training``.

Figure functions return a matplotlib ``Figure``; the chapter shows it and saves it through
:class:`jepa_lite.course.chapter.ChapterRun`. Widgets are built from ipywidgets core controls
so tests can set a control's value and check the result without a browser.
"""

from jepa_lite.course.viz.encoder import (
    fig_bn_statistics,
    fig_cell_agreement,
    fig_cell_agreement_map,
    fig_feature_norms,
    fig_hole_filling,
    fig_influence,
    fig_leak,
    fig_reach_on_grids,
    fig_receptive_fields,
)
from jepa_lite.course.viz.evaluation import (
    fig_ablation,
    fig_comparison,
    fig_confusion,
    fig_feature_map,
    fig_probe_bars,
    fig_probe_curves,
    fig_retrieval,
    fig_sweep,
    fig_time_per_epoch,
)
from jepa_lite.course.viz.explorer import MaskExplorer
from jepa_lite.course.viz.ijepa import fig_costs, fig_masks_side_by_side, fig_two_encoders
from jepa_lite.course.viz.images import (
    draw_grid,
    draw_mask,
    fig_block_shapes,
    fig_blocks,
    fig_dataset,
    fig_fraction_hist,
    fig_grid,
    fig_heatmaps,
    fig_scene_kinds,
    fig_stages,
    fig_strategies,
    render_masks,
)
from jepa_lite.course.viz.overview import pipeline_figure
from jepa_lite.course.viz.style import (
    BLOCK_COLOURS,
    FLOOR,
    HIDDEN_RGB,
    LINE_STYLES,
    METHOD_COLOURS,
    RUN_COLOURS,
    TARGET_HEX,
    TARGET_RGB,
    as_array,
    fig_to_png,
    load_image,
    run_styles,
    sample_images,
    two_se,
)
from jepa_lite.course.viz.training import (
    fig_collapse_kinds,
    fig_runs,
    fig_schedules,
    fig_spectra,
    fig_training,
)

__all__ = [
    'TARGET_RGB', 'TARGET_HEX', 'HIDDEN_RGB', 'BLOCK_COLOURS', 'LINE_STYLES', 'RUN_COLOURS',
    'METHOD_COLOURS', 'FLOOR', 'run_styles', 'two_se', 'sample_images', 'load_image',
    'as_array', 'fig_to_png', 'draw_grid', 'draw_mask', 'fig_grid', 'fig_blocks',
    'fig_strategies', 'fig_stages', 'fig_heatmaps', 'fig_fraction_hist', 'fig_block_shapes',
    'render_masks', 'fig_dataset', 'fig_scene_kinds', 'pipeline_figure', 'fig_leak',
    'fig_hole_filling', 'fig_receptive_fields', 'fig_bn_statistics', 'fig_influence',
    'fig_reach_on_grids', 'fig_cell_agreement', 'fig_cell_agreement_map', 'fig_feature_norms',
    'fig_schedules', 'fig_training', 'fig_runs', 'fig_collapse_kinds', 'fig_spectra',
    'fig_probe_curves', 'fig_confusion', 'fig_retrieval', 'fig_feature_map', 'fig_comparison',
    'fig_ablation', 'fig_sweep', 'fig_probe_bars', 'fig_time_per_epoch', 'MaskExplorer',
    'fig_two_encoders', 'fig_masks_side_by_side', 'fig_costs',
]
