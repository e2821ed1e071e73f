"""The course, built on the library (which never imports it): ``profiles``, ``chapter``
(what a chapter calls), ``runner`` (the chapters under papermill), ``runs``, ``compare``,
``sweep``, ``report``, ``bundle``, ``analysis``, ``bench`` and ``viz`` (figures, widgets).
"""
