"""The applications on top of the library: the ``zounds-xr`` command line and the demo.

``python -m zounds_xr.app.cli`` (the ``zounds-xr`` script) and
``zounds_xr.app.demo.run_demo``.
"""
