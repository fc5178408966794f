"""The commands people run, each a module with ``main(argv=None)`` and a console command (pyproject.toml). Those
that train or measure weights live beside the trainer (:mod:`fer_core.train.commands`: only training may use it);
those here read, prepare data and publish:

=================  ===================================  =================================================
console command    module                               what it does
=================  ===================================  =================================================
fer-predict        fer_core.predict.cli                 read the faces of images, folders and videos
fer-data           fer_core.commands.prepare_data       decode FER+ / FER2013 into a training cache
fer-teach          fer_core.train.commands.teach        distillation targets from trained weights
fer-train          fer_core.train.commands.train        train a model (on GPUs: ``torchrun -m`` it)
fer-evaluate       fer_core.train.commands.evaluate     evaluate weights on a dataset split
fer-export         fer_core.train.commands.export       store, measure and card a trained weight
fer-publish        fer_core.commands.publish            the model repos and the Space on the Hugging Face Hub
=================  ===================================  =================================================

``python -m MODULE`` runs any of them, and the maintainers' tools ``fer_core.commands.pin`` and
``fer_core.commands.weights_table``, ``fer_core.train.commands.fit_balance`` and ``fer_core.train.commands.fit_crop``;
``train_scripts/*.py`` are the same commands by path.
"""
