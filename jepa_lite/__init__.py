"""jepa_lite: CNN-JEPA, chapter by chapter.

Modules, one idea each: ``masking`` (ch01), ``data``, ``config`` (profiles), ``viz`` (figures
and widgets), ``course`` (papermill runner), ``cli`` (the ``jepa-lite`` command).
"""

__version__ = "0.1.0"
REPO_URL = "https://github.com/jepa-lite/jepa_lite"
