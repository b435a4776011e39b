# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The AWX objects in ``awx/``: surveys, credential types, job templates and the release workflow.

They are checked by AWX's own rules, restated here from AWX's source: a survey spec as
``JobTemplateSurveySpec._validate_spec_data`` checks a POST, an answer as
``SurveyJobTemplateMixin._survey_element_validation`` checks a launch, a credential type as
``CredentialTypeInputField`` and ``CredentialTypeInjectorField`` do. Then against what they run:
every survey variable is a public variable of its playbook, of a compatible type, with the
playbook's own default. ``test_awx_validation.py`` runs the playbooks' real validation on the
answers; this file needs no Ansible run except the syntax check and ansible-lint at the end.
"""

from __future__ import annotations

import copy
import json
import keyword
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.canary.istio.plugins.module_utils._guance import settings as guance_settings
from ansible_collections.canary.istio.plugins.module_utils._k8s.options import AUTH_ENV_VARS, resolve_auth_params

REPO_ROOT = Path(__file__).resolve().parents[2]
AWX_DIR = REPO_ROOT / "awx"
PLAYBOOKS_DIR = REPO_ROOT / "playbooks"
VENV_BIN = Path(sys.executable).parent

# ---------------------------------------------------------------------------------------------
# AWX's rules
# ---------------------------------------------------------------------------------------------

# The question types AWX accepts and the Python type of a default (and of an answer) for each.
SURVEY_TYPES: dict[str, type | tuple[type, ...]] = {
    "text": str,
    "textarea": str,
    "password": str,
    "multiplechoice": str,
    "multiselect": str,
    "integer": int,
    "float": (float, int),
}
TEXT_TYPES = ("text", "textarea", "password")
CHOICE_TYPES = ("multiplechoice", "multiselect")
IDENTIFIER = re.compile(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$")


def split_choices(choices: Any) -> list[Any]:
    """AWX keeps choices as a list, or as one string with a choice per line."""
    if isinstance(choices, str):
        return [choice for choice in choices.splitlines() if choice.strip()]
    return list(choices)


def survey_spec_errors(survey: Any) -> list[str]:
    """What AWX refuses when the survey spec is POSTed to a (workflow) job template's survey_spec/."""
    if not isinstance(survey, dict):
        return ["the survey spec is not a JSON object"]
    errors = []
    for field, kind, label in (("name", str, "string"), ("description", str, "string"), ("spec", list, "list of items")):
        if field not in survey:
            errors.append(f"Field '{field}' is missing from survey spec.")
        elif not isinstance(survey[field], kind):
            errors.append(f"Expected {label} for field '{field}', received {type(survey[field]).__name__} type.")
    if errors:
        return errors
    if not survey["spec"]:
        return ["'spec' doesn't contain any items."]
    variables: set[str] = set()
    for idx, item in enumerate(survey["spec"]):
        if not isinstance(item, dict):
            errors.append(f"Survey question {idx} is not a json object.")
            continue
        missing = False
        for key in ("type", "question_name", "variable", "required"):
            kind = bool if key == "required" else str
            if key not in item:
                errors.append(f"'{key}' missing from survey question {idx}")
                missing = True
            elif not isinstance(item[key], kind):
                errors.append(f"'{key}' in survey question {idx} expected to be {kind.__name__}.")
                missing = True
        if missing:
            continue
        if item["variable"] in variables:
            errors.append(f"'variable' '{item['variable']}' duplicated in survey question {idx}.")
        variables.add(item["variable"])
        qtype = item["type"]
        if qtype not in SURVEY_TYPES:
            errors.append(f"'{qtype}' in survey question {idx} is not one of the allowed question types.")
            continue
        if "default" in item and item["default"] != "" and not isinstance(item["default"], SURVEY_TYPES[qtype]):
            errors.append(f"Default value {item['default']!r} in survey question {idx} has the wrong type.")
        for key in ("min", "max"):
            if item.get(key) is not None and not isinstance(item[key], int):
                errors.append(f"The {key} limit in survey question {idx} expected to be integer.")
        if qtype in CHOICE_TYPES:
            if "choices" not in item:
                errors.append(f"Survey question {idx} of type {qtype} must specify choices.")
                continue
            if "default" in item:
                default = item["default"]
                defaults = split_choices(default) if isinstance(default, str) else list(default)
                if qtype == "multiplechoice" and len(defaults) > 1:
                    errors.append("Multiple Choice (Single Select) can only have one default value.")
                if any(value not in split_choices(item["choices"]) for value in defaults):
                    errors.append("Default choice must be answered from the choices listed.")
        if isinstance(item.get("default"), str) and item["default"].startswith("$encrypted$") and qtype != "password":
            errors.append(f"$encrypted$ is a reserved keyword for password question defaults (question {idx}).")
    return errors


def answer_errors(question: dict[str, Any], answers: dict[str, Any]) -> list[str]:
    """What AWX refuses in the answers (or the extra vars) given to a question at launch."""
    var = question["variable"]
    if var not in answers:
        return [f"'{var}' value missing"] if question["required"] else []
    value, qtype = answers[var], question["type"]
    errors = []
    if qtype in TEXT_TYPES:
        if not isinstance(value, str):
            return [f"Value {value!r} for '{var}' expected to be a string."]
        if question.get("min") not in ("", None) and len(value) < int(question["min"]):
            errors.append(f"'{var}' value {value!r} is too small")
        if question.get("max") not in ("", None) and len(value) > int(question["max"]):
            errors.append(f"'{var}' value {value!r} is too large")
    elif qtype in ("integer", "float"):
        kinds = (int,) if qtype == "integer" else (float, int)
        if type(value) not in kinds:  # AWX compares the exact type: True is not an integer answer
            return [f"Value {value!r} for '{var}' expected to be {'an integer' if qtype == 'integer' else 'a numeric type'}."]
        if question.get("min") not in ("", None) and value < question["min"]:
            errors.append(f"'{var}' value {value} is too small")
        if question.get("max") not in ("", None) and value > question["max"]:
            errors.append(f"'{var}' value {value} is too large")
    elif qtype == "multiselect":
        if not isinstance(value, list):
            return [f"'{var}' value is expected to be a list."]
        errors += [f"Value {v!r} for '{var}' expected to be one of the choices" for v in value
                   if v not in split_choices(question["choices"])]
    elif qtype == "multiplechoice" and value not in split_choices(question["choices"]):
        errors.append(f"Value {value!r} for '{var}' expected to be one of {split_choices(question['choices'])}.")
    return errors


def launch_extra_vars(template_vars: dict[str, Any], survey: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """The extra vars of a job as AWX builds them: the template's, then every survey default that
    passes its own question's checks, then what the launch gives (answers and prompted vars)."""
    extra = copy.deepcopy(template_vars)
    for question in survey["spec"]:
        default = question.get("default")
        if default is not None and not answer_errors(question, {question["variable"]: default}):
            extra[question["variable"]] = default
    extra.update(copy.deepcopy(answers))
    return extra


def credential_type_errors(ctype: Any) -> list[str]:
    """What AWX refuses in a custom credential type (inputs and injectors)."""
    from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if not isinstance(ctype, dict):
        return ["the credential type is not a JSON object"]
    errors = []
    if not isinstance(ctype.get("name"), str) or not ctype["name"]:
        errors.append("name is required")
    if ctype.get("kind") not in ("cloud", "net"):
        errors.append("kind: only cloud and net can be used for custom credential types")
    inputs, injectors = ctype.get("inputs", {}), ctype.get("injectors", {})
    if set(inputs) - {"fields", "required"}:
        errors.append(f"inputs: unknown keys {sorted(set(inputs) - {'fields', 'required'})}")
    allowed = {"id", "label", "type", "format", "choices", "help_text", "multiline", "secret", "ask_at_runtime", "default"}
    ids: list[str] = []
    for field in inputs.get("fields", []):
        if set(field) - allowed:
            errors.append(f"field {field.get('id')}: unknown keys {sorted(set(field) - allowed)}")
        if "id" not in field or "label" not in field:
            errors.append(f"field {field}: id and label are required")
            continue
        if not IDENTIFIER.match(field["id"]):
            errors.append(f"{field['id']} is an invalid variable name")
        if field["id"] == "tower":
            errors.append('"tower" is a reserved field name')
        if field["id"] in ids:
            errors.append(f"field IDs must be unique ({field['id']})")
        ids.append(field["id"])
        ftype = field.get("type", "string")
        if ftype not in ("string", "boolean"):
            errors.append(f"field {field['id']}: type must be string or boolean")
        if field.get("format") not in (None, "ssh_private_key", "url"):
            errors.append(f"field {field['id']}: format must be ssh_private_key or url")
        for key in ("choices", "multiline", "format", "secret"):
            if key in field and ftype != "string":
                errors.append(f"{key} not allowed for {ftype} type ({field['id']})")
        expected = {"string": str, "boolean": bool}.get(ftype)
        if "default" in field and expected and not isinstance(field["default"], expected):
            errors.append(f"{field['default']!r} is not a {ftype}")
    errors += [f"required names an unknown field {name}" for name in inputs.get("required", []) if name not in ids]

    if set(injectors) - {"env", "extra_vars", "file"}:
        errors.append(f"injectors: unknown keys {sorted(set(injectors) - {'env', 'extra_vars', 'file'})}")
    files = list(injectors.get("file", {}))
    errors += [f"file injector {name}: not template or template.<name>" for name in files
               if not re.match(r"^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$", name)]
    if "template" in files and len(files) > 1:
        errors.append("Must use multi-file syntax when injecting multiple files")
    for name, value in injectors.get("env", {}).items():
        if not IDENTIFIER.match(name):
            errors.append(f"env {name}: not a valid environment variable name")
        if name.startswith("ANSIBLE_"):
            errors.append(f"Environment variable {name} may affect Ansible configuration so its use is not allowed")
        if not value.isascii():
            errors.append(f"env {name}: the value must be ASCII")
    errors += [f"extra_vars {name}: not a valid variable name" for name in injectors.get("extra_vars", {})
               if not IDENTIFIER.match(name)]
    if errors:
        return errors
    # Every template may use only the fields and tower.filename (in the file syntax used).
    namespace: dict[str, Any] = {field_id: "EXAMPLE" for field_id in ids}
    if "template" in files:
        namespace["tower"] = {"filename": "EXAMPLE_FILENAME"}
    else:
        namespace["tower"] = {"filename": {name.split(".", 1)[1]: "EXAMPLE_FILENAME" for name in files}}
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    for kind, entries in injectors.items():
        for key, template in entries.items():
            try:
                env.from_string(template).render(namespace)
            except UndefinedError as exc:
                errors.append(f"{kind} {key} uses an undefined field ({exc})")
            except TemplateSyntaxError as exc:
                errors.append(f"Syntax error rendering template for {key} inside of {kind} ({exc})")
    return errors


def inject(ctype: dict[str, Any], inputs: dict[str, Any], private_dir: str = "/runner/env") -> dict[str, dict[str, str]]:
    """What a credential of this type gives a job: its files (name -> content), env and extra vars."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    injectors = ctype["injectors"]
    paths = {name: f"{private_dir}/tmp_{name.replace('.', '_')}" for name in injectors.get("file", {})}
    if "template" in paths:
        filename: Any = paths["template"]
    else:
        filename = {name.split(".", 1)[1]: path for name, path in paths.items()}
    namespace = dict(inputs, tower={"filename": filename})
    render = {kind: {key: env.from_string(tpl).render(namespace) for key, tpl in injectors.get(kind, {}).items()}
              for kind in ("env", "extra_vars", "file")}
    render["files"] = {paths[name]: content for name, content in render.pop("file").items()}
    return render


# ---------------------------------------------------------------------------------------------
# The files
# ---------------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return json.load(stream)


JOB_TEMPLATES: list[dict[str, Any]] = load_yaml(AWX_DIR / "vars" / "job_templates.yml")["canary_awx_job_templates"]
WORKFLOW: dict[str, Any] = load_yaml(AWX_DIR / "vars" / "job_templates.yml")["canary_awx_workflow"]
SURVEY_FILES = sorted((AWX_DIR / "surveys").glob("*.json"))
CREDENTIAL_TYPE_FILES = sorted((AWX_DIR / "credential_types").glob("*.json"))
TEMPLATE_IDS = [template["id"] for template in JOB_TEMPLATES]


def template_by_id(template_id: str) -> dict[str, Any]:
    return next(template for template in JOB_TEMPLATES if template["id"] == template_id)


def template_by_name(name: str) -> dict[str, Any]:
    return next(template for template in JOB_TEMPLATES if template["name"] == name)


def survey_of(template_id: str) -> dict[str, Any]:
    return load_json(AWX_DIR / "surveys" / f"{template_id}.json")


def credential_type(name: str) -> dict[str, Any]:
    return next(ctype for ctype in map(load_json, CREDENTIAL_TYPE_FILES) if ctype["name"] == name)


# ---------------------------------------------------------------------------------------------
# What a playbook declares and validates
# ---------------------------------------------------------------------------------------------

# Variables a play reads in its keywords (`hosts:`, `serial:`), before any task can validate them.
PLAY_KEYWORD_VARS = {"canary_hosts": "hosts", "canary_wave_size": "serial"}
TASK_FILE_ACTIONS = ("import_tasks", "include_tasks")
ROLE_ACTIONS = ("include_role", "import_role")


def _action(task: dict[str, Any], short: str) -> Any:
    for name in (short, f"ansible.builtin.{short}", f"ansible.legacy.{short}"):
        if name in task:
            return task[name]
    return None


def _load_trusted(path: Path) -> Any:
    from ansible.parsing.dataloader import DataLoader

    loader = DataLoader()
    try:  # ansible-core 2.19+: strings from files are templates only when trusted
        return loader.load_from_file(str(path), trusted_as_template=True)
    except TypeError:
        return loader.load_from_file(str(path))


def _walk_tasks(tasks: list[dict[str, Any]], here: Path, play_dir: Path, found: dict[str, list[Any]]) -> None:
    for task in tasks or []:
        for section in ("block", "rescue", "always"):
            _walk_tasks(task.get(section, []), here, play_dir, found)
        for short in TASK_FILE_ACTIONS:
            target = _action(task, short)
            if target is not None:
                target = target if isinstance(target, str) else target["file"]
                # As Ansible looks: beside the including task file first, then beside the playbook.
                path = here / target if (here / target).is_file() else play_dir / target
                _walk_tasks(_load_trusted(path), path.parent, play_dir, found)
        for short in ROLE_ACTIONS:
            role = _action(task, short)
            if role is not None:
                found["roles"].append((role if isinstance(role, str) else role["name"]).rsplit(".", 1)[-1])
        spec = _action(task, "validate_argument_spec")
        if spec is not None:
            found["specs"].append(spec["argument_spec"])


def _own_variables(playbook: Path) -> dict[str, dict[str, Any]]:
    """The variables a playbook validates itself, then those of the roles it includes."""
    from ansible.template import Templar

    variables: dict[str, dict[str, Any]] = {}
    for play in _load_trusted(playbook):
        play_vars: dict[str, Any] = {}
        for vars_file in play.get("vars_files", []):
            play_vars.update(_load_trusted(playbook.parent / vars_file))
        found: dict[str, list[Any]] = {"roles": [], "specs": []}
        _walk_tasks(play.get("tasks", []), playbook.parent, playbook.parent, found)
        templar = Templar(variables=play_vars)
        for expression in found["specs"]:
            for name, option in dict(templar.template(expression)).items():
                variables.setdefault(name, dict(option, source="validated"))
        for role in found["roles"]:
            specs = load_yaml(REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]
            for name, option in specs["main"]["options"].items():
                variables.setdefault(name, dict(option, source="role"))
        for name, keyword_name in PLAY_KEYWORD_VARS.items():
            if name in str(play.get(keyword_name, "")):
                default = re.search(r"%s\s*\|\s*default\('([^']*)'\)" % name, str(play[keyword_name]))
                variables.setdefault(name, {"type": "str", "source": "play", "default": default and default.group(1)})
    return variables


def playbook_variables(playbook: Path) -> dict[str, dict[str, Any]]:
    """Every variable the playbook declares, with its option spec and where it comes from:
    ``validated`` (the playbook's own validate_argument_spec tasks), ``role`` (the argument spec of
    a role it includes), ``play`` (a play keyword) or ``public`` (a public variable, as
    canary_release validates them all, that this playbook does not check itself)."""
    variables = _own_variables(playbook)
    for name, option in _own_variables(PLAYBOOKS_DIR / "canary_release.yml").items():
        if option["source"] == "validated":
            variables.setdefault(name, dict(option, source="public"))
    return variables


# ---------------------------------------------------------------------------------------------
# The checkers can fail
# ---------------------------------------------------------------------------------------------

GOOD_SURVEY = {
    "name": "s", "description": "d",
    "spec": [{"type": "multiplechoice", "question_name": "q", "variable": "v", "required": True,
              "choices": ["a", "b"], "default": "a"}],
}


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("description"), "Field 'description' is missing"),
    (lambda s: s.update(spec=[]), "doesn't contain any items"),
    (lambda s: s["spec"][0].pop("required"), "'required' missing"),
    (lambda s: s["spec"][0].update(required="yes"), "'required' in survey question 0 expected to be bool"),
    (lambda s: s["spec"][0].update(type="boolean"), "not one of the allowed question types"),
    (lambda s: s["spec"][0].update(default="c"), "Default choice must be answered from the choices listed"),
    (lambda s: s["spec"][0].update(default="a\nb"), "can only have one default value"),
    (lambda s: s["spec"][0].pop("choices"), "must specify choices"),
    (lambda s: s["spec"].append(dict(s["spec"][0])), "duplicated"),
    (lambda s: s["spec"].append({"type": "integer", "question_name": "n", "variable": "n", "required": False,
                                 "default": "5"}), "wrong type"),
    (lambda s: s["spec"].append({"type": "integer", "question_name": "n", "variable": "n", "required": False,
                                 "min": "0"}), "min limit"),
])
def test_survey_checker_refuses_what_awx_refuses(change, message):
    survey = copy.deepcopy(GOOD_SURVEY)
    assert survey_spec_errors(survey) == []
    change(survey)
    assert any(message in error for error in survey_spec_errors(survey)), survey_spec_errors(survey)


@pytest.mark.parametrize("question, answers, refused", [
    ({"type": "integer", "variable": "w", "required": True, "min": 0, "max": 100}, {"w": 150}, True),
    ({"type": "integer", "variable": "w", "required": True, "min": 0, "max": 100}, {"w": "10"}, True),
    ({"type": "integer", "variable": "w", "required": True, "min": 0, "max": 100}, {"w": 100}, False),
    ({"type": "integer", "variable": "w", "required": True}, {}, True),
    ({"type": "integer", "variable": "w", "required": False}, {}, False),
    ({"type": "text", "variable": "t", "required": True, "min": 1, "max": 3}, {"t": ""}, True),
    ({"type": "text", "variable": "t", "required": True, "min": 1, "max": 3}, {"t": "abcd"}, True),
    ({"type": "text", "variable": "t", "required": True, "min": 1, "max": 3}, {"t": 5}, True),
    ({"type": "multiplechoice", "variable": "c", "required": False, "choices": ["a"]}, {"c": "b"}, True),
    ({"type": "multiselect", "variable": "c", "required": False, "choices": "a\nb"}, {"c": ["a", "b"]}, False),
    ({"type": "multiselect", "variable": "c", "required": False, "choices": "a\nb"}, {"c": "a"}, True),
])
def test_answer_checker(question, answers, refused):
    assert bool(answer_errors(question, answers)) is refused


def test_launch_extra_vars_precedence():
    survey = {"spec": [
        {"type": "integer", "variable": "a", "required": False, "default": 5, "min": 0, "max": 9},
        {"type": "integer", "variable": "b", "required": False, "default": 50, "min": 0, "max": 9},
        {"type": "text", "variable": "c", "required": True, "min": 1, "max": 9},
    ]}
    extra = launch_extra_vars({"a": 1, "b": 2, "t": [1]}, survey, {"c": "x"})
    # a: the survey default wins over the template; b: an invalid default is dropped; c: the answer.
    assert extra == {"a": 5, "b": 2, "t": [1], "c": "x"}


@pytest.mark.parametrize("survey_id", [*TEMPLATE_IDS, "release_with_approval"])
def test_a_wave_list_in_the_template_reaches_the_playbook(survey_id):
    """Survey answers and defaults win over a template's extra vars in AWX, and a survey cannot
    give a list: the wave size is no survey question, so the template's wave list (or one given at
    launch) is what the play's serial gets."""
    template_vars = {"canary_wave_size": [1, "100%"], "canary_steps": [10, 50, 100]}
    survey = survey_of(survey_id)
    assert "canary_wave_size" not in {question["variable"] for question in survey["spec"]}
    answers = {q["variable"]: "x" for q in survey["spec"] if q["required"] and q["type"] == "text"}
    assert launch_extra_vars(template_vars, survey, answers)["canary_wave_size"] == [1, "100%"]
    assert launch_extra_vars(template_vars, survey, {**answers, "canary_wave_size": 1})["canary_wave_size"] == 1


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_no_template_variable_is_also_a_survey_question(template_id):
    """A template's extra variable that its survey also asks would be overridden by the survey's
    default at every launch (configure.yml refuses such extra variables too)."""
    asked = {question["variable"] for question in survey_of(template_id)["spec"]}
    assert not asked & set(template_by_id(template_id).get("extra_vars", {}))


GOOD_TYPE = {
    "name": "t", "kind": "cloud",
    "inputs": {"fields": [{"id": "token", "label": "Token", "type": "string", "secret": True}], "required": ["token"]},
    "injectors": {"file": {"template.cfg": "{{ token }}"}, "env": {"X_CFG": "{{ tower.filename.cfg }}"}},
}


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(kind="kubernetes"), "kind"),
    (lambda c: c["inputs"]["fields"][0].update(id="tower"), "reserved"),
    (lambda c: c["inputs"]["fields"][0].update(id="1token"), "invalid variable name"),
    (lambda c: c["inputs"]["fields"][0].update(type="boolean"), "secret not allowed"),
    (lambda c: c["inputs"].update(required=["nope"]), "unknown field"),
    (lambda c: c["injectors"]["env"].update(ANSIBLE_CONFIG="x"), "may affect Ansible configuration"),
    (lambda c: c["injectors"]["env"].update(X_OTHER="{{ tower.filename.other }}"), "undefined"),
    (lambda c: c["injectors"]["env"].update(X_OTHER="{{ secret }}"), "undefined"),
    (lambda c: c["injectors"]["file"].update(template="{{ token }}"), "multi-file syntax"),
    (lambda c: c["injectors"].update(files={}), "unknown keys"),
])
def test_credential_type_checker_refuses_what_awx_refuses(change, message):
    ctype = copy.deepcopy(GOOD_TYPE)
    assert credential_type_errors(ctype) == []
    change(ctype)
    assert any(message in error for error in credential_type_errors(ctype)), credential_type_errors(ctype)


# ---------------------------------------------------------------------------------------------
# Surveys
# ---------------------------------------------------------------------------------------------


def test_every_template_and_the_workflow_have_a_survey_and_no_survey_is_unused():
    assert sorted(path.stem for path in SURVEY_FILES) == sorted(TEMPLATE_IDS + [WORKFLOW["id"]])


@pytest.mark.parametrize("path", SURVEY_FILES, ids=lambda path: path.stem)
def test_survey_is_valid_for_awx(path):
    assert survey_spec_errors(load_json(path)) == []


@pytest.mark.parametrize("path", SURVEY_FILES, ids=lambda path: path.stem)
def test_survey_questions_are_complete_and_safe(path):
    """Stricter than AWX, so that a survey cannot hand a playbook a value AWX lets through by accident."""
    from ansible.vars.reserved import is_reserved_name

    for question in load_json(path)["spec"]:
        var, qtype = question["variable"], question["type"]
        assert IDENTIFIER.match(var) and not keyword.iskeyword(var), var
        assert not is_reserved_name(var), f"{var} is a name Ansible reserves"
        assert not var.startswith(("awx_", "tower_")), f"{var}: AWX sets awx_* and tower_* itself"
        assert var in question["question_description"], f"{var}: the description names the variable, as the docs do"
        if qtype in TEXT_TYPES + ("integer", "float"):
            assert isinstance(question.get("min"), int) and isinstance(question.get("max"), int), f"{var}: min and max"
            assert question["min"] <= question["max"], var
        if qtype in TEXT_TYPES and question["required"]:
            assert question["min"] >= 1, f"{var}: a required text needs min >= 1 or an empty answer passes"
        if qtype in TEXT_TYPES and not question["required"]:
            # A blank optional text reaches the playbook as "" or null (awx#16205), a value that
            # overrides the playbook's default: every optional text carries the default itself.
            assert question.get("default"), f"{var}: optional text without a default"
        if "default" in question:
            assert answer_errors(question, {var: question["default"]}) == [], f"{var}: the default fails its own checks"
        if qtype in CHOICE_TYPES:
            choices = question["choices"]
            assert isinstance(choices, list) and choices and len(set(choices)) == len(choices), var
            assert all(isinstance(choice, str) and choice.strip() == choice and choice for choice in choices), var
        assert qtype != "password", f"{var}: secrets come from credentials, not surveys"


# Values each type of question can hand a playbook.
def answer_types(question: dict[str, Any]) -> set[str]:
    if question["type"] in ("integer",):
        return {"int"}
    if question["type"] == "float":
        return {"float"}
    if question["type"] == "multiselect":
        return {"list"}
    if question["type"] == "multiplechoice" and sorted(question["choices"]) == ["false", "true"]:
        return {"bool"}
    return {"str"}


COMPATIBLE = {"int": {"int", "raw"}, "float": {"float", "raw"}, "list": {"list", "raw"},
              "bool": {"bool", "raw"}, "str": {"str", "raw", "path"}}


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_survey_variables_are_public_variables_of_the_playbook(template_id):
    variables = playbook_variables(REPO_ROOT / template_by_id(template_id)["playbook"])
    for question in survey_of(template_id)["spec"]:
        var = question["variable"]
        assert var in variables, f"{var} is not a variable of {template_by_id(template_id)['playbook']}"
        option = variables[var]
        assert answer_types(question) & COMPATIBLE[option["type"]] if option["type"] in COMPATIBLE else False, (
            f"{var}: a {question['type']} question cannot give a {option['type']}")
        if option.get("choices"):
            assert set(question["choices"]) <= set(map(str, option["choices"])), var
        if question["type"] == "multiplechoice" and answer_types(question) == {"bool"}:
            assert option["type"] == "bool", var


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_survey_defaults_are_the_playbook_defaults(template_id):
    """Launching with the answers untouched behaves as the playbook run by hand."""
    variables = playbook_variables(REPO_ROOT / template_by_id(template_id)["playbook"])
    for question in survey_of(template_id)["spec"]:
        option = variables[question["variable"]]
        if "default" not in question or option["source"] not in ("validated", "role", "play"):
            continue
        expected = option.get("default")
        got = question["default"]
        if option["type"] == "bool":
            got = {"true": True, "false": False}[got]
        assert got == expected, f"{question['variable']}: survey default {got!r}, playbook default {expected!r}"


def test_shift_traffic_holds_by_default_like_its_playbook():
    # canary_interval is not in shift_traffic's own spec; the playbook holds default(0) there.
    text = (PLAYBOOKS_DIR / "shift_traffic.yml").read_text(encoding="utf-8")
    assert "canary_interval | default(0)" in text
    assert next(q for q in survey_of("shift_traffic")["spec"] if q["variable"] == "canary_interval")["default"] == 0


def _bool_answer_variables() -> list[str]:
    found = set()
    for path in SURVEY_FILES:
        found |= {q["variable"] for q in load_json(path)["spec"] if answer_types(q) == {"bool"}}
    return sorted(found)


def bool_reads(var: str, seen: set[str] | None = None) -> list[tuple[str, int, bool]]:
    """Where playbooks and roles read ``var``: (file, line, converted with `| bool`). A plain
    hand-over to another variable (`other: "{{ var | default(x) }}"`) counts as the reads of that
    variable, followed in turn."""
    seen = set() if seen is None else seen
    seen.add(var)
    reads = []
    handover = re.compile(r"^\s*-?\s*(\w+):\s*[\"']\{\{\s*%s(\s*\|\s*default\([^)]*\))?\s*\}\}[\"']\s*$" % var)
    use = re.compile(r"\b%s\b(\s*\|\s*default\([^)]*\))?(\s*\|\s*bool\b)?" % var)
    for path in sorted(PLAYBOOKS_DIR.rglob("*.yml")) + sorted((REPO_ROOT / "roles").rglob("tasks/*.yml")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("#") or re.match(r"\s*%s\s*:" % var, line):
                continue
            target = handover.match(line)
            if target:
                if target.group(1) not in seen:
                    reads += bool_reads(target.group(1), seen)
                continue
            reads += [(str(path.relative_to(REPO_ROOT)), number, bool(m.group(2))) for m in use.finditer(line)]
    return reads


@pytest.mark.parametrize("var", _bool_answer_variables())
def test_boolean_answers_are_read_through_bool(var):
    """A survey answers "true" or "false" as a string; a bare `when: var` fails on a string in
    ansible-core 2.19, so every place that reads such a variable converts it with `| bool`."""
    reads = bool_reads(var)
    assert reads, f"{var} is read nowhere"
    assert [read for read in reads if not read[2]] == []


def test_canary_events_is_read_as_a_survey_answer():
    reads = bool_reads("canary_events")
    assert reads and [read for read in reads if not read[2]] == []


def test_bool_reads_sees_a_bare_read(tmp_path, monkeypatch):
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "p.yml").write_text(
        "- x:\n    flag_b: \"{{ flag_a | default(false) }}\"\n  when: flag_b\n- when: flag_a | bool\n")
    monkeypatch.setattr(sys.modules[__name__], "PLAYBOOKS_DIR", tmp_path / "playbooks")
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", tmp_path)
    assert sorted(bool_reads("flag_a")) == [("playbooks/p.yml", 3, False), ("playbooks/p.yml", 4, True)]


# ---------------------------------------------------------------------------------------------
# Job templates and the workflow
# ---------------------------------------------------------------------------------------------


def test_one_job_template_per_playbook():
    playbooks = sorted(str(path.relative_to(REPO_ROOT)) for path in PLAYBOOKS_DIR.glob("*.yml"))
    assert sorted(template["playbook"] for template in JOB_TEMPLATES) == playbooks
    assert len({template["name"] for template in JOB_TEMPLATES}) == len(JOB_TEMPLATES)
    assert len(set(TEMPLATE_IDS)) == len(TEMPLATE_IDS)
    for template in JOB_TEMPLATES:
        assert (REPO_ROOT / template["playbook"]).is_file()
        assert Path(template["playbook"]).stem == template["id"]


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_template_extra_vars_are_public_variables(template_id):
    template = template_by_id(template_id)
    variables = playbook_variables(REPO_ROOT / template["playbook"])
    survey_vars = {question["variable"] for question in survey_of(template_id)["spec"]}
    for name in template.get("extra_vars", {}):
        assert name in variables, name
        assert name not in survey_vars, f"{name}: a survey default would hide the template's value"


def test_workflow_gates_promotion_behind_an_approval():
    nodes = {node["identifier"]: node for node in WORKFLOW["nodes"]}
    kinds = {ident: node["unified_job_template"]["type"] for ident, node in nodes.items()}
    edges = {(ident, kind): [target["identifier"] for target in node.get("related", {}).get(kind, [])]
             for ident, node in nodes.items() for kind in ("success_nodes", "failure_nodes", "always_nodes")}
    by_template = {ident: node["unified_job_template"]["name"] for ident, node in nodes.items()
                   if kinds[ident] == "job_template"}
    for name in by_template.values():
        template_by_name(name)  # every job template node names a job template of ours
    release = next(i for i, n in by_template.items() if template_by_name(n)["id"] == "canary_release")
    promote = next(i for i, n in by_template.items() if template_by_name(n)["id"] == "promote")
    rollback = next(i for i, n in by_template.items() if template_by_name(n)["id"] == "rollback")
    approvals = [ident for ident, kind in kinds.items() if kind == "workflow_approval"]
    assert len(approvals) == 1
    approval = approvals[0]
    watch = next(i for i, n in by_template.items() if template_by_name(n)["id"] == "watch")
    # release -> approval -> promote, and the watch beside the approval; the only way into promote
    # is the approval's success.
    assert edges[(release, "success_nodes")] == [approval, watch]
    assert edges[(approval, "success_nodes")] == [promote]
    into_promote = [edge for edge, targets in edges.items() if promote in targets]
    assert into_promote == [(approval, "success_nodes")]
    # A failed release and a denied or expired approval roll back.
    assert rollback in edges[(release, "failure_nodes")]
    assert rollback in edges[(approval, "failure_nodes")]
    assert nodes[approval]["unified_job_template"]["timeout"] > 0
    # The release stops below 100%: promotion is the approval's job.
    steps = nodes[release]["extra_data"]["canary_steps"]
    assert steps == sorted(steps) and 0 <= min(steps) and max(steps) < 100
    # It keeps its lock for the whole wait, and the watch never outlives the wait.
    assert nodes[release]["extra_data"]["canary_hold_lock"] is True
    assert nodes[release]["extra_data"]["canary_lock_ttl"] > nodes[approval]["unified_job_template"]["timeout"]
    assert template_by_id("watch")["extra_vars"]["canary_watch_seconds"] <= nodes[approval]["unified_job_template"]["timeout"]
    # The watch rolls back by itself; nothing follows it (a node after it would wait for it).
    assert not any(edges[(watch, kind)] for kind in ("success_nodes", "failure_nodes", "always_nodes"))
    assert "guance" in template_by_id("watch") and "guance" in template_by_id("promote")


def test_workflow_survey_answers_every_required_question_of_its_templates():
    workflow_survey = survey_of(WORKFLOW["id"])
    assert survey_spec_errors(workflow_survey) == []
    answered = {q["variable"] for q in workflow_survey["spec"] if q["required"] or "default" in q}
    for node in WORKFLOW["nodes"]:
        if node["unified_job_template"]["type"] != "job_template":
            continue
        template = template_by_name(node["unified_job_template"]["name"])
        given = answered | set(node.get("extra_data", {})) | set(template.get("extra_vars", {}))
        for question in survey_of(template["id"])["spec"]:
            if question["required"]:
                assert question["variable"] in given, (template["id"], question["variable"])
            if question["variable"] in answered:
                shared = next(q for q in workflow_survey["spec"] if q["variable"] == question["variable"])
                assert answer_errors(question, {question["variable"]: shared.get("default", "x")}) == [] or shared["required"]


def test_same_variable_same_question_everywhere():
    """One question per variable: the answer means the same in every template and the workflow."""
    seen: dict[str, dict[str, Any]] = {}
    for path in SURVEY_FILES:
        for question in load_json(path)["spec"]:
            shape = {k: question.get(k) for k in ("type", "min", "max", "choices", "question_name")}
            assert seen.setdefault(question["variable"], shape) == shape, (path.name, question["variable"])


# ---------------------------------------------------------------------------------------------
# Credential types
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CREDENTIAL_TYPE_FILES, ids=lambda path: path.stem)
def test_credential_type_is_valid_for_awx(path):
    ctype = load_json(path)
    assert credential_type_errors(ctype) == []
    for field in ctype["inputs"]["fields"]:
        if re.search(r"key|token|kubeconfig|password", field["id"]):
            assert field.get("secret") is True, f"{field['id']} must be secret (encrypted, never shown)"


def test_guance_credential_injects_what_the_modules_read():
    ctype = credential_type("Guance API")
    spec = guance_settings.GUANCE_ARG_SPEC
    # The key is the api_key option's fallback; the URL is read by config_from_params (after an
    # explicit site, which must win over what a credential injects).
    assert spec["api_key"]["fallback"][1] == [guance_settings.GUANCE_ENV_API_KEY]
    given = inject(ctype, {"url": "https://us1-openapi.guance.com", "api_key": "tkn_secret"})
    assert given["env"] == {guance_settings.GUANCE_ENV_URL: "https://us1-openapi.guance.com",
                            guance_settings.GUANCE_ENV_API_KEY: "tkn_secret"}
    assert given["extra_vars"] == {} and given["files"] == {}, "the key stays out of extra vars (they are logged)"
    config = guance_settings.config_from_params({"api_key": given["env"][guance_settings.GUANCE_ENV_API_KEY]}, given["env"])
    assert config.url == "https://us1-openapi.guance.com"


def test_kubeconfig_credential_writes_a_file_named_by_k8s_auth_kubeconfig():
    ctype = credential_type("Kubeconfig (multi-context)")
    kubeconfig = "apiVersion: v1\nkind: Config\ncontexts: [{name: eu}, {name: us}]\n"
    given = inject(ctype, {"kubeconfig": kubeconfig})
    (path, content), = given["files"].items()
    assert content == kubeconfig
    assert given["env"] == {AUTH_ENV_VARS["kubeconfig"][0]: path}
    assert given["extra_vars"] == {}
    # The modules read it when a task sets no kubeconfig; a host's canary_context picks the cluster.
    auth = resolve_auth_params({"context": "us"}, environ=given["env"])
    assert auth["kubeconfig"] == path and auth["context"] == "us"


def test_awx_kubernetes_credential_is_read_by_the_modules():
    """AWX's own "OpenShift or Kubernetes API Bearer Token" credential injects these variables."""
    awx_env = {"K8S_AUTH_HOST": "https://k8s.example.com:6443", "K8S_AUTH_API_KEY": "sha256~token",
               "K8S_AUTH_VERIFY_SSL": "True", "K8S_AUTH_SSL_CA_CERT": "/runner/env/tmp_ca"}
    auth = resolve_auth_params({}, environ=awx_env)
    assert auth["host"] == "https://k8s.example.com:6443"
    assert auth["api_key"] == "sha256~token"
    assert auth["validate_certs"] is True
    assert auth["ca_cert"] == "/runner/env/tmp_ca"
    assert resolve_auth_params({}, environ=dict(awx_env, K8S_AUTH_VERIFY_SSL="False"))["validate_certs"] is False


# ---------------------------------------------------------------------------------------------
# The configuration playbook
# ---------------------------------------------------------------------------------------------


def test_configure_playbook_reads_existing_files():
    text = (AWX_DIR / "configure.yml").read_text(encoding="utf-8")
    for relative in re.findall(r"credential_types/[\w.]+\.json", text):
        assert (AWX_DIR / relative).is_file(), relative
    assert sorted(re.findall(r"credential_types/[\w.]+\.json", text)) == sorted(
        str(path.relative_to(AWX_DIR)) for path in CREDENTIAL_TYPE_FILES)
    for field in ("credential_type: Kubeconfig (multi-context)", "credential_type: Guance API"):
        assert credential_type(field.split(": ", 1)[1])


def _ansible_env() -> dict[str, str]:
    import os

    return dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0")


def test_configure_playbook_syntax():
    run = subprocess.run([str(VENV_BIN / "ansible-playbook"), "--syntax-check", "awx/configure.yml"],
                         cwd=REPO_ROOT, capture_output=True, text=True, env=_ansible_env(), check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_awx_and_inventory_files_pass_ansible_lint():
    paths = ["awx/", "execution-environment.yml", "meta/execution-environment.yml", "inventories/"]
    run = subprocess.run([str(VENV_BIN / "ansible-lint"), "--nocolor", "--offline", *paths], cwd=REPO_ROOT,
                         capture_output=True, text=True, env=_ansible_env(), check=False)
    assert run.returncode == 0, run.stdout + run.stderr
