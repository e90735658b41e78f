// Filters, tests, Python methods and globals, each against what jinja2 3.1 renders under
// transformers' environment (expected strings produced with /usr/bin/python3's jinja2).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "data/text/chat_template.h"
#include "common/error.h"

namespace jinja_builtins_test {

using nlohmann::ordered_json;

std::string render(const std::string& source, const ordered_json& context = ordered_json::object()) {
  return distillery::text::ChatTemplate(source, "builtins.jinja").render(context);
}

const ordered_json kMessages = ordered_json::array({{{"role", "system"}}, {{"role", "user"}}, {{"role", "assistant"}}});

TEST(JinjaStrMethods, StripAndSplitFollowPython) {
  EXPECT_EQ(render(R"({{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.strip(" x") }}|{{ s.split() }}|{{ s.split("x") }}|{{ s.split("x", 1) }}|{{ s.rsplit("x", 1) }})",
                   {{"s", "  xaxbx \n"}}),
            "xaxbx|xaxbx \n|  xaxbx|axbx \n|['xaxbx']|['  ', 'a', 'b', ' \\n']|['  ', 'axbx \\n']|['  xaxb', ' \\n']");
}

TEST(JinjaStrMethods, WhitespaceIsUnicodeWhitespace) {
  EXPECT_EQ(render("{{ s.strip() }}|{{ s.split() }}", {{"s", "\u2003\u00a0text\u3000\n"}}), "text|['text']");
}

TEST(JinjaStrMethods, QwenThinkSplitting) {
  EXPECT_EQ(render(R"({{ c.split("</think>")[-1].lstrip("\n") }}|{{ c.split("</think>")[0].rstrip("\n").split("<think>")[-1].lstrip("\n") }})",
                   {{"c", "<think>\nreason\n</think>\n\nanswer"}}),
            "answer|reason");
}

TEST(JinjaStrMethods, SearchReplaceAndCase) {
  EXPECT_EQ(render(R"({{ s.startswith("ab") }} {{ s.endswith("ef") }} {{ s.startswith(("x", "a")) }} {{ s.replace("c", "C") }} {{ s.upper() }} {{ s.title() }} {{ s.capitalize() }} {{ s.find("d") }} {{ s.count("b") }})",
                   {{"s", "abcdef abc"}}),
            "True False True abCdef abC ABCDEF ABC Abcdef Abc Abcdef abc 3 2");
  EXPECT_EQ(render(R"({{ "ß straße ﬁ".upper() }} {{ "ΣΑΣ ΣΑΣ".lower() }} {{ "éclair".capitalize() }} {{ "hello wORLD".title() }})"),
            "SS STRASSE FI σας σας Éclair Hello World");
  EXPECT_EQ(render(R"({{ "ab".center(6, "*") }} {{ "42".zfill(5) }} {{ "a=b=c".partition("=") }} {{ "abc".removeprefix("a") }} {{ "12".isdigit() }} {{ "-".join(["a", "b"]) }})"),
            "**ab** 00042 ('a', '=', 'b=c') bc True a-b");
}

TEST(JinjaStrMethods, UnknownAttributeIsUndefinedButUnimplementedMethodIsAnError) {
  EXPECT_EQ(render("{{ 'x'.nonexistent is defined }}"), "False");
  try {
    render("{{ '{}'.format(1) }}");
    FAIL() << "expected an error";
  } catch (const distillery::UserError& e) {
    EXPECT_STREQ(e.what(), "builtins.jinja line 1: unsupported str method 'format'");
  }
}

TEST(JinjaDictMethods, GetItemsKeysValues) {
  EXPECT_EQ(render(R"({{ d.get("k") }} {{ d.get("m", "dflt") }} {{ d.get("m") }} {{ d.items()|list }} {{ d.keys()|list }} {{ d.values()|list }})",
                   {{"d", {{"k", "v"}, {"n", 1}}}}),
            "v dflt None [('k', 'v'), ('n', 1)] ['k', 'n'] ['v', 1]");
}

TEST(JinjaFilters, StringFilters) {
  EXPECT_EQ(render(R"({{ "  x  "|trim }}|{{ "xxaxx"|trim("x") }}|{{ "hello world-foo (bar"|title }}|{{ "aaa"|replace("a", "b", 2) }})"),
            "x|a|Hello World-Foo (Bar|bba");
  EXPECT_EQ(render(R"({{ "a\nb\n\nc"|indent(2) }}|{{ "a\nb"|indent(2, true) }})"), "a\n  b\n\n  c|  a\n  b");
}

TEST(JinjaFilters, SequenceBasics) {
  EXPECT_EQ(render(R"({{ [1,2,3]|first }} {{ [1,2,3]|last }} {{ []|first is defined }} {{ [1,2,3]|join(", ") }} {{ {"a":1}|length }} {{ "héllo"|count }})"),
            "1 3 False 1, 2, 3 1 5");
}

TEST(JinjaFilters, DefaultOnlyReplacesUndefinedUnlessBoolean) {
  EXPECT_EQ(render(R"({{ ""|default("dflt") }} {{ ""|default("dflt", true) }} {{ none|default("n") }} {{ none|d("n", true) }})"),
            " dflt None n");
}

TEST(JinjaFilters, NumberConversionAndRounding) {
  EXPECT_EQ(render(R"({{ 3.7|int }} {{ "42"|int }} {{ "4.5"|int }} {{ "x"|int(7) }} {{ "3.5"|float }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.1|round(0, "ceil") }})"),
            "3 42 4 7 3.5 2.57 2.0 4.0 3.0");
}

TEST(JinjaFilters, SortUniqueAggregate) {
  EXPECT_EQ(render(R"({{ [3,1,2]|sort }} {{ ["b","A","c"]|sort }} {{ ["b","A","c"]|sort(case_sensitive=true) }} {{ [3,1,2]|sort(reverse=true) }} {{ [1,1,2]|unique|list }} {{ [1,2,3]|sum }} {{ [1,5,3]|max }})"),
            "[1, 2, 3] ['A', 'b', 'c'] ['A', 'b', 'c'] [3, 2, 1] [1, 2] 6 5");
  EXPECT_EQ(render("{{ d|dictsort }} {{ d|items|list }}", {{"d", {{"b", 1}, {"a", 2}, {"C", 3}}}}),
            "[('a', 2), ('b', 1), ('C', 3)] [('b', 1), ('a', 2), ('C', 3)]");
}

TEST(JinjaFilters, SelectRejectMapOverMessages) {
  EXPECT_EQ(render(R"({{ msgs|selectattr("role", "equalto", "user")|list|length }} {{ msgs|map(attribute="role")|join(",") }} {{ msgs|rejectattr("role", "eq", "system")|map(attribute="role")|list }} {{ [1,0,2]|select|list }} {{ [1,2,3,4]|select("odd")|list }} {{ ["a","b"]|map("upper")|list }})",
                   {{"msgs", kMessages}}),
            "1 system,user,assistant ['user', 'assistant'] [1, 2] [1, 3] ['A', 'B']");
}

TEST(JinjaFilters, AttributePathsAndDefaults) {
  ordered_json users = ordered_json::array({{{"name", "b"}, {"age", 3}, {"a", {{"city", "X"}}}},
                                            {{"name", "a"}, {"age", 3}, {"a", {{"city", "Y"}}}},
                                            {{"name", "c"}, {"age", 1}, {"nick", "cc"}, {"a", {{"city", "X"}}}}});
  EXPECT_EQ(render(R"({{ users|sort(attribute="age,name")|map(attribute="name")|join(",") }} {{ users|map(attribute="nick", default="?")|join(",") }} {{ users|sum(attribute="age") }} {{ users|selectattr("a.city", "equalto", "X")|map(attribute="name")|list }})",
                   {{"users", users}}),
            "c,a,b ?,?,cc 7 ['b', 'c']");
}

TEST(JinjaFilters, GeneratorResultsAreTruthyEvenWhenEmpty) {
  // jinja2's select filters return generators: `{% if msgs|selectattr(...) %}` is always true.
  EXPECT_EQ(render(R"({% if msgs|selectattr("role", "equalto", "tool") %}generator is truthy{% endif %})",
                   {{"msgs", ordered_json::array()}}),
            "generator is truthy");
}

TEST(JinjaFilters, ToJsonIsTransformersJsonDumps) {
  ordered_json x = {{"name", "f"}, {"args", {{"a", {1, 2.5, nullptr, true, "é\"\\\n\u0001<>&'"}}}}, {"e", ordered_json::object()}, {"l", ordered_json::array()}};
  EXPECT_EQ(render("{{ x|tojson }}", {{"x", x}}),
            R"({"name": "f", "args": {"a": [1, 2.5, null, true, "é\"\\\n\u0001<>&'"]}, "e": {}, "l": []})");
  ordered_json y = {{"name", "f"}, {"args", {{"a", {1, 2.5}}}}, {"e", ordered_json::object()}, {"l", ordered_json::array()}};
  EXPECT_EQ(render("{{ x|tojson(indent=2) }}", {{"x", y}}),
            "{\n  \"name\": \"f\",\n  \"args\": {\n    \"a\": [\n      1,\n      2.5\n    ]\n  },\n  \"e\": {},\n  \"l\": []\n}");
  EXPECT_EQ(render(R"({{ x|tojson(separators=(",", ":")) }} {{ x|tojson(sort_keys=true) }} {{ x|tojson(ensure_ascii=true) }})",
                   {{"x", {{"b", "é😀"}, {"a", 1}}}}),
            R"({"b":"é😀","a":1} {"a": 1, "b": "é😀"} {"b": "\u00e9\ud83d\ude00", "a": 1})");
}

TEST(JinjaFilters, PercentFormatting) {
  EXPECT_EQ(render(R"({{ "%s and %d, %5.2f|%-4s|%r" % ("a", 3, 3.14159, "x", "q") }} {{ "%s-%s"|format(1, 2) }} {{ "%(a)s"|format(a=5) }})"),
            "a and 3,  3.14|x   |'q' 1-2 5");
}

TEST(JinjaTests, TypeAndValueTests) {
  EXPECT_EQ(render(R"({{ 1 is number }} {{ true is integer }} {{ 1.0 is float }} {{ "a" is string }} {{ {} is mapping }} {{ u is sequence }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 0 is false }} {{ false is false }} {{ "a" is eq "a" }} {{ 1 is in [1] }} {{ none is sameas none }} {{ "AB" is upper }})"),
            "True False True True True True True True False True True True True True");
}

TEST(JinjaGlobals, RangeDictNamespace) {
  EXPECT_EQ(render("{{ range(1, 7, 2)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1) }} {{ namespace(a=1).a }}"),
            "[1, 3, 5] [5, 3, 1] {'a': 1} 1");
}

TEST(JinjaGlobals, StrftimeNowFormatsTheLocalTime) {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char year[8];
  std::strftime(year, sizeof year, "%Y", &local);
  std::string got = render("{{ strftime_now('%Y') }}");
  // Tolerate a render that straddles New Year's midnight.
  EXPECT_TRUE(got == year || got == std::to_string(std::atoi(year) + 1)) << got;
}

}  // namespace jinja_builtins_test
