"""Tasks as a registry: `task` → the module that loads and serves it. A new kind of model is one module
with a `load(context) -> Handler` function, and one line here. Modules import lazily, so a chat runtime
never pays for importing diffusers."""

from __future__ import annotations

import importlib

from alloy.modelspec import Task
from alloy.runtime.tasks.base import Handler, LoadContext

TASK_MODULES: dict[Task, str] = {
    Task.TEXT_TO_IMAGE: "alloy.runtime.tasks.text_to_image",
    Task.CHAT: "alloy.runtime.tasks.chat",
    Task.VISION_CHAT: "alloy.runtime.tasks.vision_chat",
}


def load_handler(context: LoadContext) -> Handler:
    """Load the spec's model with its task's loader (blocking: downloads and reads weights)."""
    module = importlib.import_module(TASK_MODULES[context.spec.task])
    handler: Handler = module.load(context)
    return handler
