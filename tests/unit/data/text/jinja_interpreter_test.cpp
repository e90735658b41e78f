// The interpreter's language core: whitespace control, expressions, statements and jinja2's
// scoping. Every expected string here is what jinja2 3.1 renders under transformers' settings
// (trim_blocks, lstrip_blocks); tests/parity/render_chat_reference.py's environment reproduces them.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "data/text/chat_template.h"
#include "common/error.h"

namespace jinja_interpreter_test {

using nlohmann::ordered_json;

std::string render(const std::string& source, const ordered_json& context = ordered_json::object()) {
  return distillery::text::ChatTemplate(source, "test.jinja").render(context);
}

std::string render_error(const std::string& source, const ordered_json& context = ordered_json::object()) {
  try {
    render(source, context);
  } catch (const distillery::UserError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(JinjaWhitespace, TrimBlocksEatsTheNewlineAfterABlockTag) {
  EXPECT_EQ(render("a\n{% if true %}\nb\n{% endif %}\nc\n"), "a\nb\nc");
}

TEST(JinjaWhitespace, LstripBlocksEatsIndentationBeforeABlockTagOnly) {
  EXPECT_EQ(render("a\n  {% if true %}\n  b\n  {% endif %}\nc"), "a\n  b\nc");
  EXPECT_EQ(render("  {% if true %}x{% endif %}  \n  {{ 'y' }}  \n"), "x  \n  y  ");
}

TEST(JinjaWhitespace, PlusDisablesLstripOnTheLeftAndTrimOnTheRight) {
  EXPECT_EQ(render("a\n  {%+ if true %}\n  b\n  {% endif +%}\nc"), "a\n    b\n\nc");
}

TEST(JinjaWhitespace, MinusStripsAllWhitespaceOnItsSide) {
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("a\n\n  {{- 'x' -}}  \n\nb"), "axb");
  EXPECT_EQ(render("{{- ' lead' }} x {{- ' trail' -}} \n y"), " lead x traily");
}

TEST(JinjaWhitespace, CommentsFollowBlockRules) {
  EXPECT_EQ(render("a {# comment #}\n b\n  {# c2 #}\nc"), "a  b\nc");
  EXPECT_EQ(render("a {#- comment -#} b"), "ab");
}

TEST(JinjaWhitespace, RawBlocksAreLiteral) {
  EXPECT_EQ(render("{% raw %}{{ not parsed }}{% endraw %}\nx"), "{{ not parsed }}x");
}

TEST(JinjaWhitespace, OneTrailingNewlineIsDroppedAndCrlfIsNormalized) {
  EXPECT_EQ(render("line\n\n"), "line\n");
  EXPECT_EQ(render("x\r\ny\r\n{% if true %}\r\nz{% endif %}\r\n"), "x\ny\nz");
}

TEST(JinjaWhitespace, IndentedLoopBodyIsCleanWithDashes) {
  EXPECT_EQ(render("{%- for i in range(3) %}\n  {{- i }}\n{%- endfor %}"), "012");
  EXPECT_EQ(render("{% for i in range(3) %}\n  {{ i }}\n{% endfor %}\n"), "  0\n  1\n  2\n");
}

TEST(JinjaExpressions, ArithmeticFollowsPython) {
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} "
                   "{{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** 3 ** 2 }}"),
            "7 9 3.5 3 -4 1 2 1024 64");
  EXPECT_EQ(render("{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e3 }} {{ 1_000 }} {{ 10/5 }} {{ 2.5e-7 }}"),
            "2.5 0.30000000000000004 1000.0 1000 2.0 2.5e-07");
  EXPECT_EQ(render("{{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 'a' + 'b' }}"), "ababab [1, 1] [1, 2] ab");
}

TEST(JinjaExpressions, PrintsValuesAsPythonStrDoes) {
  EXPECT_EQ(render("{{ none }} {{ true }} {{ false }}|{{ undefined_var }}|"), "None True False||");
  EXPECT_EQ(render("{{ [1, 'two', 3.0, none, true, [], {}] }} {{ (1,) }} {{ (1, 2) }}"),
            "[1, 'two', 3.0, None, True, [], {}] (1,) (1, 2)");
  EXPECT_EQ(render("{{ {'a': 1, 'b': [1, 2], 'c': {'d': none}} }}"), "{'a': 1, 'b': [1, 2], 'c': {'d': None}}");
  EXPECT_EQ(render("{{ [\"it's\", 'say \"hi\"', 'tab\\t'] }}"), "[\"it's\", 'say \"hi\"', 'tab\\t']");
  EXPECT_EQ(render("{{ 0.1 }} {{ 1e16 }} {{ 1e15 }} {{ 1.0e-5 }} {{ -0.0 }}"), "0.1 1e+16 1000000000000000.0 1e-05 -0.0");
}

TEST(JinjaExpressions, TildeConcatenatesAnything) {
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ true ~ [1, 'b'] ~ missing }}"), "a1NoneTrue[1, 'b']");
}

TEST(JinjaExpressions, ComparisonsChainAndMembershipWorks) {
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ [1,2] < [1,3] }} {{ 1 == true }}"),
            "True False True True True");
  EXPECT_EQ(render("{{ 'a' in 'cat' }} {{ 1 in [1,2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 'x' in missing }}"),
            "True True True True False");
}

TEST(JinjaExpressions, LogicReturnsOperandsAndTernaryMayBeUndefined) {
  EXPECT_EQ(render("{{ true and 'x' }} {{ 0 or 'y' }} {{ '' or [] }} {{ not not 1 }}"), "x y [] True");
  EXPECT_EQ(render("{{ 'y' if true else 'n' }} {{ 'y' if false else 'n' }} [{{ 'y' if false }}]"), "y n []");
}

TEST(JinjaExpressions, FiltersBindTighterThanArithmeticAndUnaryMinus) {
  EXPECT_EQ(render("{{ -x|abs }} {{ messages|length - 1 }} {{ [1, 2]|length + 1 }}",
                   {{"x", 4}, {"messages", {1, 2, 3}}}),
            "4 2 3");
  EXPECT_NE(render_error("{{ 1 + 2|string }}").find("unsupported operand type(s) for +: 'int' and 'str'"), std::string::npos);
}

TEST(JinjaExpressions, SlicesFollowPythonIncludingNegativeSteps) {
  ordered_json ctx = {{"l", {1, 2, 3, 4, 5, 6}}, {"s", "héllo 世界"}};
  EXPECT_EQ(render("{{ l[-1] }} {{ l[1:] }} {{ l[::-1] }} {{ l[::2] }} {{ l[5:1:-2] }} {{ l.0 }} [{{ l[10] }}]", ctx),
            "6 [2, 3, 4, 5, 6] [6, 5, 4, 3, 2, 1] [1, 3, 5] [6, 4] 1 []");
  EXPECT_EQ(render("{{ s[1] }} {{ s[-2:] }} {{ s[::-1] }} {{ s|length }}", ctx), "é 世界 界世 olléh 8");
}

TEST(JinjaUndefined, PrintsEmptyAndIsFalsyButAttributeAccessFails) {
  EXPECT_EQ(render("[{{ x }}] {{ x is defined }} {{ x|length }} {{ x|default('d') }} {{ x ~ 't' }} {% if x %}y{% else %}n{% endif %}"),
            "[] False 0 d t n");
  EXPECT_EQ(render("{{ d.missing is defined }} {{ d['missing'] is defined }} {{ d.k }}", {{"d", {{"k", "v"}}}}),
            "False False v");
  EXPECT_NE(render_error("{{ x.y }}").find("'x' is undefined"), std::string::npos);
  EXPECT_NE(render_error("{{ x + 1 }}").find("'x' is undefined"), std::string::npos);
}

TEST(JinjaUndefined, NullIsNoneNotUndefined) {
  EXPECT_EQ(render("{{ r is defined }} {{ r is none }} {{ r }} {{ s is defined }}", {{"r", nullptr}}), "True True None False");
}

TEST(JinjaStatements, ForLoopExposesLoopVariables) {
  EXPECT_EQ(render("{% for i in 'ab' %}{{ loop.index0 }}{{ loop.index }}{{ loop.revindex }}{{ loop.first }}"
                   "{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('x', 'y') }};{% endfor %}"),
            "012TrueFalse2bx;121FalseTrue2ay;");
}

TEST(JinjaStatements, ForLoopFiltersElseAndUnpacks) {
  EXPECT_EQ(render("{% for i in [] %}x{% else %}empty{% endfor %} "
                   "{% for i in [1,2,3,4] if i is even %}{{ loop.index }}/{{ loop.length }}:{{ i }} {% endfor %}"),
            "empty 1/2:2 2/2:4 ");
  EXPECT_EQ(render("{% for a, (b, c) in [[1, [2, 3]]] %}{{ a }}{{ b }}{{ c }}{% endfor %}"
                   "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
                   {{"d", {{"b", 1}, {"a", 2}}}}),
            "123b=1;a=2;");
}

TEST(JinjaStatements, BreakAndContinue) {
  EXPECT_EQ(render("{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
            "02");
}

TEST(JinjaScoping, LoopIterationsStartFromTheOuterValue) {
  // jinja2: assignments inside a loop body are local to that iteration.
  EXPECT_EQ(render("{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = x + 1 %}{{ x }},{% endfor %}{{ x }}"),
            "01,01,01,0");
  EXPECT_EQ(render("{% for i in range(2) %}{% if i == 0 %}{% set y = 5 %}{% endif %}[{{ y }}]{% endfor %}"), "[5][]");
  EXPECT_EQ(render("{% if true %}{% set z = 3 %}{% endif %}{{ z }}"), "3");
}

TEST(JinjaScoping, NamespaceCarriesStateOutOfLoops) {
  EXPECT_EQ(render("{% set ns = namespace(a=1) %}{% for i in range(4) %}{% set ns.a = ns.a + i %}{% endfor %}"
                   "{{ ns.a }} {{ ns.missing is defined }}"),
            "7 False");
}

TEST(JinjaScoping, TopLevelSetShadowsTheContext) {
  EXPECT_EQ(render("{% set messages = messages[1:] %}{{ messages|length }}", {{"messages", {1, 2, 3}}}), "2");
}

TEST(JinjaStatements, SetForms) {
  EXPECT_EQ(render("{% set y, z = 2, 3 %}{% set t = 1, 2 %}{{ y }}{{ z }}{{ t }}"), "23(1, 2)");
  EXPECT_EQ(render("{% set x %}block {{ 1 + 1 }}{% endset %}[{{ x }}]{% set y | upper %}shout{% endset %}{{ y }}"),
            "[block 2]SHOUT");
}

TEST(JinjaStatements, MacrosTakeDefaultsKeywordsAndSeeLiveGlobals) {
  EXPECT_EQ(render("{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}"
                   "{{ greet('Bob') }} {{ greet('Ann', greeting='Hi') }} [{{ greet() }}]"),
            "Hello, Bob! Hi, Ann! [Hello, !]");
  EXPECT_EQ(render("{% macro m(a) %}{{ a }}{{ g }}{% endmacro %}{% set g = 1 %}{{ m(2) }}{% set g = 5 %}{{ m(3) }}"), "2135");
  EXPECT_EQ(render("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}"),
            "120");
  EXPECT_EQ(render("{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=4) }}"), "1(2,){'k': 4}");
}

TEST(JinjaStatements, WithFilterAndGenerationBlocks) {
  EXPECT_EQ(render("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]"), "3[]");
  EXPECT_EQ(render("{% filter upper %}abc {{ 'd' }}{% endfilter %}"), "ABC D");
  // transformers' {% generation %} marks assistant text for masks; rendering keeps the text.
  EXPECT_EQ(render("{% generation %}gen {{ 1 }}{% endgeneration %}"), "gen 1");
}

TEST(JinjaErrors, ParseErrorsNameTheLine) {
  EXPECT_EQ(render_error("line one\n{{ x | wordwrap }}"), "test.jinja line 2: unsupported filter 'wordwrap'");
  EXPECT_EQ(render_error("a\nb\n{% include 'other.jinja' %}"), "test.jinja line 3: unsupported tag 'include'");
  EXPECT_EQ(render_error("{% if x %}\n{% endfor %}"), "test.jinja line 2: unknown tag 'endfor'");
  EXPECT_EQ(render_error("{% for x in y %}\nbody"), "test.jinja line 2: unexpected end of template, expected 'endfor'");
  EXPECT_EQ(render_error("\n\n{{ 'open }}"), "test.jinja line 3: unterminated string literal");
  EXPECT_EQ(render_error("{{ x is frobnicated }}"), "test.jinja line 1: unknown test 'frobnicated'");
  EXPECT_EQ(render_error("{% break %}"), "test.jinja line 1: 'break' outside of a loop");
}

TEST(JinjaErrors, RenderErrorsNameTheLine) {
  EXPECT_EQ(render_error("ok\n{% for m in messages %}\n{{ m.content + 1 }}\n{% endfor %}",
                         {{"messages", {{{"content", "hi"}}}}}),
            "test.jinja line 3: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(render_error("\n{{ [1, 2].append(3) }}"), "test.jinja line 2: access to attribute 'append' of 'list' object is unsafe");
  EXPECT_EQ(render_error("{% set x = 1 %}\n{% set x.a = 2 %}"), "test.jinja line 2: cannot assign attribute on non-namespace object 'x'");
}

TEST(JinjaErrors, RaiseExceptionCarriesTheTemplatesMessage) {
  EXPECT_EQ(render_error("{% if messages[0].role != 'user' %}\n  {{ raise_exception('Conversation must start with a user message') }}\n{% endif %}",
                         {{"messages", {{{"role", "assistant"}}}}}),
            "test.jinja line 2: raise_exception: Conversation must start with a user message");
}

}  // namespace jinja_interpreter_test
