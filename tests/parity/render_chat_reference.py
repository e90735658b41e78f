#!/usr/bin/python3
"""Ground truth for distillery's chat-template renderer.

Renders every conversation of tests/assets/chat_conversations.jsonl through every template
listed in tests/assets/chat_templates/templates.json with Python's jinja2, in the environment
Hugging Face transformers' apply_chat_template uses, and writes
tests/assets/chat_expected.jsonl. The C++ tests (tests/unit/data/text/chat_template_parity_test.cpp)
compare against that file byte for byte, so CI needs no Python.

Run from anywhere, with the system Python that has jinja2 (Debian: python3-jinja2), after
`npm install` in the repository root (the real tokenizer configs come from node_modules):

    /usr/bin/python3 tests/parity/render_chat_reference.py          # rewrite the expectations
    /usr/bin/python3 tests/parity/render_chat_reference.py --check  # exit 1 if they are stale

What is reproduced from transformers (utils/chat_template_utils.py and
tokenization_utils_base.py, v4.4x):
  * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
    extension; a `tojson` filter that is json.dumps(x, ensure_ascii=False, indent=None,
    separators=None, sort_keys=False); globals raise_exception(message) (raises TemplateError)
    and strftime_now(format).
  * The render variables: messages, tools (None unless given), documents (None),
    add_generation_prompt, the tokenizer's special_tokens_map (bos_token, eos_token, ... as
    strings; unset ones absent), then the caller's extra keyword arguments (enable_thinking,
    date_string, ...), which win over special tokens of the same name.
"""

import argparse
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEMPLATES = os.path.join(ROOT, "tests", "assets", "chat_templates", "templates.json")
CONVERSATIONS = os.path.join(ROOT, "tests", "assets", "chat_conversations.jsonl")
EXPECTED = os.path.join(ROOT, "tests", "assets", "chat_expected.jsonl")

SPECIAL_TOKEN_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                      "mask_token", "additional_special_tokens"]


class RaisedByTemplate(jinja2.exceptions.TemplateError):
    """What the template's own raise_exception() raises (a TemplateError, as in transformers)."""


def make_environment():
    def raise_exception(message):
        raise RaisedByTemplate(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def token_text(value):
    """tokenizer_config.json stores a special token as a string or as an AddedToken dict."""
    if isinstance(value, dict):
        return value.get("content")
    return value


def load_template(entry):
    """(source, special_tokens_map) for one templates.json entry."""
    if "model_dir" in entry:
        model_dir = os.path.join(ROOT, entry["model_dir"])
        jinja_file = os.path.join(model_dir, "chat_template.jinja")
        config = json.load(open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8"))
        if os.path.exists(jinja_file):
            source = open(jinja_file, encoding="utf-8").read()
        else:
            source = config["chat_template"]
        special = {}
        for key in SPECIAL_TOKEN_KEYS:
            value = config.get(key)
            if isinstance(value, list):
                value = [token_text(v) for v in value]
            else:
                value = token_text(value)
            if value:  # transformers' special_tokens_map drops unset tokens
                special[key] = value
        return source, special
    source = open(os.path.join(ROOT, entry["file"]), encoding="utf-8").read()
    return source, dict(entry.get("special_tokens", {}))


def render_all():
    env = make_environment()
    templates = json.load(open(TEMPLATES, encoding="utf-8"))
    conversations = [json.loads(line) for line in open(CONVERSATIONS, encoding="utf-8") if line.strip()]
    records = []
    for entry in templates:
        source, special = load_template(entry)
        compiled = env.from_string(source)
        thinking_options = [None, True, False] if entry.get("thinking_flag") else [None]
        for conv in conversations:
            for add_generation_prompt in (False, True):
                for enable_thinking in thinking_options:
                    kwargs = dict(conv.get("kwargs", {}))
                    if enable_thinking is not None:
                        kwargs["enable_thinking"] = enable_thinking
                    variables = {"tools": conv.get("tools"), "documents": None,
                                 "add_generation_prompt": add_generation_prompt, **special, **kwargs}
                    record = {"template": entry["id"], "conversation": conv["id"],
                              "add_generation_prompt": add_generation_prompt}
                    if enable_thinking is not None:
                        record["enable_thinking"] = enable_thinking
                    record["variables"] = variables
                    try:
                        record["expected"] = compiled.render(messages=conv["messages"], **variables)
                    except RaisedByTemplate as e:
                        record["raised"] = str(e)
                    except Exception as e:  # the template cannot render this conversation
                        record["error"] = f"{type(e).__name__}: {e}"
                    records.append(record)
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), records


def write_or_check(path, text, check, summary):
    """Writes `text` to `path`, or with `check` compares it with the committed file; returns the exit code."""
    if check:
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        if current != text:
            print(f"{path} is stale: rerun {os.path.relpath(sys.argv[0], ROOT)}", file=sys.stderr)
            return 1
        print(f"up to date: {summary}")
        return 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(path, ROOT)}: {summary}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    args = parser.parse_args()
    text, records = render_all()
    rendered = sum("expected" in r for r in records)
    failed = len(records) - rendered
    return write_or_check(EXPECTED, text, args.check, f"{len(records)} renders ({rendered} outputs, {failed} template "
                          f"errors), jinja2 {jinja2.__version__}")


if __name__ == "__main__":
    sys.exit(main())
