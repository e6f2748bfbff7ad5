"""The lab: what measures and stresses the product, kept out of the package users install.

``make setup`` installs it beside ``tritonclf`` in a checkout, and its jobs join the
``tritonclf`` command (``jobs.py``). lab/README.md lists what is here.
"""
