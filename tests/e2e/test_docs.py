"""The error codes the docs give are the code's: every `Code` of include/parley/status.hpp
with the name code_name() gives it (src/core/status.cpp) is in protocol.md's table (2.4)
and in the OpenAPI file's `Error` table and enums, with the same number and name, and
nothing else is. No server is started."""

import os
import re
import unittest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
        return f.read()


def code_table():
    """{number: name} from the enum and code_name()."""
    enum = re.search(r"enum class Code : int \{(.*?)\};", read("include", "parley", "status.hpp"), re.S).group(1)
    numbers = {m.group(1): int(m.group(2)) for m in re.finditer(r"(k\w+) = (\d+)", enum)}
    names = dict(re.findall(r"case Code::(k\w+): return \"(\w+)\";", read("src", "core", "status.cpp")))
    return {numbers[k]: names[k] for k in numbers if numbers[k] != 0}


class DocsTest(unittest.TestCase):

    def test_protocol_lists_every_code(self):
        text = read("docs", "protocol.md")
        section = text[text.index("### 2.4 Error codes"):text.index("### 2.5")]
        rows = {int(n): name for n, name in re.findall(r"^\| (\d+) \| (\w+) \|", section, re.M)}
        self.assertEqual(rows, code_table())

    def test_openapi_lists_every_code(self):
        text = read("docs", "openapi.yaml")
        error = text[text.index("\n    Error:\n"):]
        error = error[:error.index("\n    UserId:")] if "\n    UserId:" in error else error
        rows = {int(n): name for n, name in re.findall(r"^\s+\| (\d+) \| (\w+) \|", error, re.M)}
        self.assertEqual(rows, code_table())
        codes = re.search(r"code:\s+type: integer\s+enum: \[([^\]]*)\]", error, re.S).group(1)
        self.assertEqual(sorted(int(c) for c in codes.split(",")), sorted(code_table()))
        names = re.search(r"name:\s+type: string\s+enum: \[([^\]]*)\]", error, re.S).group(1)
        self.assertEqual(sorted(n.strip() for n in names.split(",")), sorted(code_table().values()))


if __name__ == "__main__":
    unittest.main()
