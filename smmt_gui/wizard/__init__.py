"""The training wizard: data source, features, model variant, run settings -> one `TrainConfig`.

The wizard only *builds* a configuration (and checks the data on a worker thread on the way);
training itself runs in `smmt_gui.panels.training.TrainingDashboard`.
"""

from smmt_gui.wizard.wizard import TrainingWizard

__all__ = ["TrainingWizard"]
