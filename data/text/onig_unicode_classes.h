// Oniguruma's Unicode classes as PCRE2 class bodies (see regex.h): the tables generated from the
// reference's own code point sets by tests/parity/gen_onig_unicode_classes.cpp.
#pragma once

#include <string_view>

namespace distillery::text {

// A body to put inside PCRE2 brackets; a `negated` body lists the code points outside the class
// (shorter for classes such as \p{Cn}, and PCRE2 checks explicit ranges one by one).
struct OnigUnicodeClass {
  const char* name;
  bool negated;
  const char* body;
};

// "s", "w", "d" (the escapes) or a general category short name ("L", "Lu", "LC", ...).
const OnigUnicodeClass* find_onig_class(std::string_view name);

// A \p{...} property as Oniguruma reads it: general category short or long names ("Lu",
// "Uppercase_Letter"), ignoring case, spaces, hyphens and underscores. nullptr when unsupported.
const OnigUnicodeClass* find_onig_property(std::string_view property);

}  // namespace distillery::text
