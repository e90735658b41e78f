#include "data/text/onig_unicode_classes.h"

#include <string>
#include <utility>

namespace distillery::text {

namespace onig_unicode_classes_detail {

const OnigUnicodeClass kClasses[] = {
#include "data/text/onig_unicode_classes.inc"
};

// General category long names Oniguruma accepts, mapped to the short ones.
const std::pair<const char*, const char*> kCategoryAliases[] = {
    {"letter", "L"}, {"casedletter", "LC"}, {"uppercaseletter", "Lu"}, {"lowercaseletter", "Ll"},
    {"titlecaseletter", "Lt"}, {"modifierletter", "Lm"}, {"otherletter", "Lo"}, {"mark", "M"},
    {"combiningmark", "M"}, {"nonspacingmark", "Mn"}, {"spacingmark", "Mc"}, {"enclosingmark", "Me"},
    {"number", "N"}, {"decimalnumber", "Nd"}, {"letternumber", "Nl"}, {"othernumber", "No"},
    {"punctuation", "P"}, {"connectorpunctuation", "Pc"}, {"dashpunctuation", "Pd"},
    {"openpunctuation", "Ps"}, {"closepunctuation", "Pe"}, {"initialpunctuation", "Pi"},
    {"finalpunctuation", "Pf"}, {"otherpunctuation", "Po"}, {"symbol", "S"}, {"mathsymbol", "Sm"},
    {"currencysymbol", "Sc"}, {"modifiersymbol", "Sk"}, {"othersymbol", "So"}, {"separator", "Z"},
    {"spaceseparator", "Zs"}, {"lineseparator", "Zl"}, {"paragraphseparator", "Zp"}, {"other", "C"},
    {"control", "Cc"}, {"format", "Cf"}, {"unassigned", "Cn"}, {"privateuse", "Co"}};

// Oniguruma ignores case, spaces, hyphens and underscores in property names.
std::string lower_compact(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ' ' || c == '-' || c == '_') continue;
    out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
  }
  return out;
}

}  // namespace onig_unicode_classes_detail

const OnigUnicodeClass* find_onig_class(std::string_view name) {
  for (const auto& c : onig_unicode_classes_detail::kClasses)
    if (name == c.name) return &c;
  return nullptr;
}

const OnigUnicodeClass* find_onig_property(std::string_view property) {
  namespace d = onig_unicode_classes_detail;
  const std::string wanted = d::lower_compact(property);
  for (const auto& [alias, name] : d::kCategoryAliases)
    if (wanted == alias) return find_onig_class(name);
  for (const auto& c : d::kClasses) {
    const std::string_view name = c.name;
    if (name.size() <= 2 && d::lower_compact(name) == wanted) return &c;
  }
  return nullptr;
}

}  // namespace distillery::text
