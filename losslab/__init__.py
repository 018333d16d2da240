"""losslab's harness: configs in, comparable runs out.

``losslab.train.train(cfg)`` runs one task with one loss on one dataset and writes the
run folder (losslab/runs.py); ``losslab.evaluate.evaluate(...)`` re-tests a checkpoint;
``losslab.config.compose([...])`` builds the config the command line would; and
``losslab.catalog.listing()`` says what can be combined. Import the submodules you need:
this package imports nothing heavy by itself.
"""
