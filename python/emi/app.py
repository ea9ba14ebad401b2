# SPDX-License-Identifier: LGPL-2.1-or-later
"""An EDGEMATRIX app folder, its emi_stream_config.json, and the GStreamer elements it describes.

    app = load_app("templates/EMI Torch 3DCNN")        # validated; raises AppConfigError
    for stage in app.stages: print(stage.factory, stage.properties)

An app folder holds emi_stream_config.json, emi_signal_callback.py, resource/ and streams/. The
config's `pipeline_configuration` names the elements in pipeline order: input, primary, tracker,
secondary (a list), empycustom, overlay, aimeta. Their properties are emi's; EDGEMATRIX's
`custom-lib` is empycustom's `module` (relative to the app folder) and `options` may be an object.
Properties our elements don't have (DeepStream's nvinfer/nvtracker/nvdsosd ones) are listed in
`app.ignored` and skipped; they never fail silently.
"""

import json
import os
from dataclasses import dataclass, field

CONFIG_NAME = "emi_stream_config.json"
CALLBACK_NAME = "emi_signal_callback.py"
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas",
                           "emi_stream_config.schema.json")

# What `input` may say that concerns the frames our elements get.
_INPUT_KEYS = {"width", "height", "format", "framerate"}


class AppConfigError(Exception):
    """A config that can't run; the message names the file, the element and the field."""


@dataclass
class Stage:
    """One element of the app's pipeline: its factory, its properties, where it came from."""
    role: str                 # "primary", "tracker", "secondary[0]", "empycustom", ...
    factory: str              # "empycustom", "emtracker", ...
    properties: dict = field(default_factory=dict)


@dataclass
class App:
    folder: str
    config_path: str
    config: dict
    width: int
    height: int
    format: str
    framerate: str
    stages: list
    signal_interval: int
    callback_path: str        # "" when the app has no emi_signal_callback.py
    callback_function: str
    event_item_keys: list
    ignored: list             # "pipeline_configuration.tracker.ll-lib-file (DeepStream only)"

    @property
    def name(self):
        return self.config.get("application_name", os.path.basename(self.folder))


def _field_path(parts):
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _validate(config, config_path):
    import jsonschema  # python3-jsonschema

    with open(SCHEMA_PATH, encoding="utf-8") as schema_file:
        schema = json.load(schema_file)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda error: list(error.absolute_path))
    if errors:
        error = errors[0]
        raise AppConfigError(f"{config_path}: {_field_path(error.absolute_path)}: {error.message}")


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as config_file:
            return json.load(config_file)
    except FileNotFoundError:
        raise AppConfigError(f"{path}: no such file ({what})") from None
    except json.JSONDecodeError as error:
        raise AppConfigError(f"{path}: not valid JSON: {error.msg} at line {error.lineno} "
                             f"column {error.colno}") from None


def _empycustom_properties(settings, folder, config_path, where):
    properties = {}
    for key, value in settings.items():
        if key == "custom-lib":
            module = value if os.path.isabs(value) else os.path.join(folder, value)
            if not os.path.isfile(module):
                raise AppConfigError(f"{config_path}: {where}.custom-lib: no such file: {module}")
            properties["module"] = os.path.abspath(module)
        elif key == "options":
            properties["options"] = value if isinstance(value, str) else json.dumps(value)
        elif key == "format":
            continue  # the input's format decides; checked in load_app
        else:
            properties[key] = value
    return properties


def _stage_of(role, settings, folder, config_path, ignored, extra=None):
    """A primary or secondary entry: {"empycustom": {...}} runs; anything else is DeepStream's."""
    if "empycustom" in settings:
        properties = _empycustom_properties(settings["empycustom"], folder, config_path,
                                            f"pipeline_configuration.{role}.empycustom")
        properties.update(extra or {})
        for key in settings:
            if key != "empycustom":
                ignored.append(f"pipeline_configuration.{role}.{key} (not an emi element)")
        return Stage(role, "empycustom", properties)
    ignored.append(f"pipeline_configuration.{role} (a DeepStream nvinfer stage: emi runs PyTorch "
                   f"programs through empycustom)")
    return None


def load_app(folder):
    """Reads and validates an app folder; raises AppConfigError."""
    folder = os.path.abspath(folder)
    if not os.path.isdir(folder):
        raise AppConfigError(f"{folder}: no such app folder")
    config_path = os.path.join(folder, CONFIG_NAME)
    config = _read_json(config_path, "every app folder has one")
    _validate(config, config_path)
    pipeline = config["pipeline_configuration"]
    ignored = []

    source = pipeline.get("input", {})
    for key in source:
        if key not in _INPUT_KEYS:
            ignored.append(f"pipeline_configuration.input.{key} (DeepStream nvstreammux only)")
    frame_format = source.get("format", "RGBA")

    stages = []
    if "primary" in pipeline:
        stage = _stage_of("primary", pipeline["primary"], folder, config_path, ignored)
        if stage is not None:
            stage.properties.setdefault("mode", "detect")
            stages.append(stage)
    if "tracker" in pipeline:
        stages.append(Stage("tracker", "emtracker", dict(pipeline["tracker"])))
    for index, secondary in enumerate(pipeline.get("secondary", [])):
        stage = _stage_of(f"secondary[{index}]", secondary, folder, config_path, ignored)
        if stage is not None:
            stages.append(stage)
    if "empycustom" in pipeline:
        stages.append(Stage("empycustom", "empycustom",
                            _empycustom_properties(pipeline["empycustom"], folder, config_path,
                                                   "pipeline_configuration.empycustom")))
    for stage in stages:
        declared = _declared_format(pipeline, stage.role)
        if declared and declared != frame_format:
            raise AppConfigError(f"{config_path}: pipeline_configuration.{stage.role}.empycustom"
                                 f".format: {declared}, but input.format is {frame_format}")
    if "overlay" in pipeline:
        stages.append(Stage("overlay", "emoverlay", dict(pipeline["overlay"])))

    aimeta = dict(pipeline.get("aimeta", {}))
    signal_interval = aimeta.pop("signal-interval", 1)
    for key in aimeta:
        ignored.append(f"pipeline_configuration.aimeta.{key} (EDGEMATRIX aimeta only)")

    callback_path = os.path.join(folder, CALLBACK_NAME)
    return App(folder=folder, config_path=config_path, config=config,
               width=source.get("width", 640), height=source.get("height", 360),
               format=frame_format, framerate=source.get("framerate", ""), stages=stages,
               signal_interval=signal_interval,
               callback_path=callback_path if os.path.isfile(callback_path) else "",
               callback_function=config.get("signal_callback_function_name", "signal_callback"),
               event_item_keys=config.get("event_item_keys", []), ignored=ignored)


def _declared_format(pipeline, role):
    settings = pipeline
    for part in role.replace("[", ".").replace("]", "").split("."):
        settings = settings[int(part)] if part.isdigit() else settings.get(part, {})
    if role != "empycustom":
        settings = settings.get("empycustom", {})
    return settings.get("format")


def ignored_lines(ignored):
    """How `emi run` and `emi check` tell the settings that don't run here, one line each."""
    return [f"emi: ignored {item}" for item in ignored]


def load_stream(path):
    """A stream config (stream_id, stream_type, location, action_rules, roi) as a dict. Its rules
    are validated by emaimeta when the pipeline starts."""
    stream = _read_json(path, "a stream config")
    if not isinstance(stream, dict):
        raise AppConfigError(f"{path}: a stream config is a JSON object")
    return stream


_EVENT_TYPES = {"string": (str,), "int": (int,), "integer": (int,), "float": (int, float),
                "number": (int, float), "double": (int, float), "bool": (bool,),
                "boolean": (bool,)}


def check_event(event, event_item_keys):
    """Problems of one event against the app's event_item_keys: missing keys, wrong types, values
    outside options or min/max."""
    problems = []
    for item in event_item_keys:
        key = item["key"]
        if key not in event:
            problems.append(f"missing {key!r}")
            continue
        value = event[key]
        types = _EVENT_TYPES[item["type"]]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            problems.append(f"{key!r} is {type(value).__name__}, not {item['type']}")
            continue
        if "options" in item and value not in item["options"]:
            problems.append(f"{key!r} = {value!r} is not one of {item['options']}")
        if "min_value" in item and value < item["min_value"]:
            problems.append(f"{key!r} = {value!r} is below {item['min_value']}")
        if "max_value" in item and value > item["max_value"]:
            problems.append(f"{key!r} = {value!r} is above {item['max_value']}")
    return problems
