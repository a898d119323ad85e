"""The import allowlist, checked on the AST, and the ways people try to get around it."""

from __future__ import annotations

import gc
import threading

import pytest

from whipstudio_nb.sandbox.policy import ALLOWED_IMPORTS, check_code, violation_message

REFERENCE_MESSAGE = (
    "Security violation: import 'requests' is not allowed. Allowed: torch, numpy, sklearn, "
    "pandas, matplotlib, scipy, math, random, os, sys, collections, itertools, functools, json, "
    "re, typing"
)


def test_message_is_the_reference_one():
    assert violation_message("requests") == REFERENCE_MESSAGE
    assert check_code("import requests") == REFERENCE_MESSAGE


@pytest.mark.parametrize(
    "code",
    [
        "import torch\nimport torch.nn as nn\nfrom torch.utils.data import DataLoader",
        "import numpy as np, math, random, os, sys, json, re, typing",
        "from collections import OrderedDict\nfrom itertools import chain\nimport functools",
        "import os.path\nfrom os import path",
        "x = eval('1 + 2')",
        "exec('import math')",
        "def f():\n    import torch\n    return torch",
        "this is not python (",  # unparsable code cannot import anything; Python reports it
    ],
)
def test_allowed(code):
    assert check_code(code) is None


@pytest.mark.parametrize(
    ("code", "module"),
    [
        ("import requests", "requests"),
        ("import socket", "socket"),
        ("import subprocess as sp", "subprocess"),
        ("from urllib.request import urlopen", "urllib.request"),
        ("import xml.etree.ElementTree", "xml.etree.ElementTree"),
        ("import torch, shutil", "shutil"),
        ("from . import sibling", "."),
        ("def f():\n    import ctypes\n", "ctypes"),
        ("try:\n    import pickle\nexcept Exception:\n    pass", "pickle"),
        ("__import__('socket')", "__import__"),
        ("m = __import__", "__import__"),
        ("import importlib", "importlib"),
        ("from importlib import import_module", "importlib"),
        ("import sys\nsys.modules['importlib'].import_module('socket')", "importlib"),
        ("getattr(__builtins__, 'open')", "__builtins__"),
        ("import builtins", "builtins"),
        ("import torch\ntorch.__builtins__", "__builtins__"),
        ("x = getattr(object, '__import__')", "__import__"),
        ("exec('import socket')", "socket"),
        ("compile('import socket', 's', 'exec')", "socket"),
        ("eval(compile('1', 's', 'eval'))", "<dynamic eval>"),
        ("code = 'imp' + 'ort socket'\nexec(code)", "<dynamic exec>"),
        ("eval(input())", "<dynamic eval>"),
    ],
)
def test_rejected(code, module):
    msg = check_code(code)
    assert msg is not None, code
    assert msg == violation_message(module)


def test_allowlist_order():
    assert ALLOWED_IMPORTS[:3] == ("torch", "numpy", "sklearn")
    assert len(ALLOWED_IMPORTS) == 16


def test_two_threads_checking_code_at_once_both_get_an_answer():
    """CPython 3.11 builds ast.parse's Python objects with one recursion counter for all
    threads, reset by each parse to its caller's stack depth: a parse that starts in another
    thread (at another depth) while one is being built made the first fail with
    "SystemError: AST constructor recursion depth mismatch" (seen with two grades at once).
    Here the first parse lets the second start at its first garbage collection."""
    code = "x = [" + ", ".join(["(1, 2)"] * 3000) + "]"
    second_may_start, second_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def second(depth: int) -> None:
        if depth:
            return second(depth - 1)  # another stack depth than the first parse's
        second_may_start.wait(5)
        try:
            check_code(code)
        except BaseException as exc:
            errors.append(exc)
        finally:
            second_done.set()

    first = threading.current_thread()

    def mid_parse(phase: str, info: dict) -> None:
        if phase == "start" and threading.current_thread() is first and armed:
            armed.clear()
            second_may_start.set()
            second_done.wait(1)  # with parses serialized, the second waits for this one

    thread = threading.Thread(target=second, args=(25,))
    thread.start()
    armed = [True]
    gc.callbacks.append(mid_parse)
    try:
        check_code(code)
    except BaseException as exc:
        errors.append(exc)
    finally:
        gc.callbacks.remove(mid_parse)
        armed.clear()
        second_may_start.set()
        thread.join(10)
    assert errors == []
