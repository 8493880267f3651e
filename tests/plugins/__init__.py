"""pytest plugins the tests load into a real benchmark run (``-p tests.plugins.NAME``) to stand in for a device."""
