#include "data/text/unicode_normalization.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "data/text/utf8.h"
#include "common/error.h"

namespace distillery::text {

namespace unicode_normalization_detail {

struct InertRange {
  uint32_t lo, hi;
};

#include "data/text/unicode_normalization_inert.inc"

template <size_t N>
bool in_ranges(const InertRange (&ranges)[N], uint32_t cp) {
  const auto* it = std::upper_bound(std::begin(ranges), std::end(ranges), cp,
                                    [](uint32_t v, const InertRange& r) { return v < r.lo; });
  return it != std::begin(ranges) && cp <= (it - 1)->hi;
}

bool is_inert(UnicodeForm form, uint32_t cp) {
  return form == UnicodeForm::kNFC || form == UnicodeForm::kNFD ? in_ranges(kCanonicalInert, cp)
                                                                 : in_ranges(kCompatibilityInert, cp);
}

// Code points of combining class 0 that can be the second half of a canonical composition
// (Tamil AU length mark, Hangul vowels and trailing consonants, ...): a preceding character may
// absorb them, so text containing them is not known to be in NFC without normalizing it.
const std::vector<uint32_t>& composing_starters() {
  static const std::vector<uint32_t> seconds = [] {
    std::vector<uint32_t> out;
    for (int32_t cp = 0x80; cp <= 0x10FFFF; ++cp) {
      const utf8proc_property_t* p = utf8proc_get_property(cp);
      if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) continue;
      utf8proc_int32_t buf[32];
      int boundclass = 0;
      const auto n = utf8proc_decompose_char(cp, buf, 32, UTF8PROC_DECOMPOSE, &boundclass);
      for (utf8proc_ssize_t k = 1; k < n; ++k)
        if (utf8proc_get_property(buf[k])->combining_class == 0) out.push_back(static_cast<uint32_t>(buf[k]));
    }
    for (uint32_t cp = 0x1161; cp <= 0x1175; ++cp) out.push_back(cp);  // Hangul V
    for (uint32_t cp = 0x11A8; cp <= 0x11C2; ++cp) out.push_back(cp);  // Hangul T
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }();
  return seconds;
}

// Whether `cp` is left unchanged by the form and cannot interact with its neighbours.
bool is_stable(UnicodeForm form, uint32_t cp) {
  const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
  if (p->combining_class != 0) return false;
  const bool compat = form == UnicodeForm::kNFKC || form == UnicodeForm::kNFKD;
  const bool decomposes = p->decomp_seqindex != UINT16_MAX && (compat || p->decomp_type == 0);
  if (decomposes) return false;
  if (form == UnicodeForm::kNFD || form == UnicodeForm::kNFKD) {
    return !(cp >= 0xAC00 && cp <= 0xD7A3);  // Hangul syllables decompose algorithmically
  }
  const auto& seconds = composing_starters();
  return !std::binary_search(seconds.begin(), seconds.end(), cp);
}

bool needs_work(UnicodeForm form, std::string_view s) {
  // Below U+0300 nothing decomposes canonically or combines, so such text is already NFC; for
  // the other forms only ASCII is trivially stable.
  const unsigned char limit = form == UnicodeForm::kNFC ? 0xCC : 0x80;
  size_t i = 0;
  while (i < s.size() && static_cast<unsigned char>(s[i]) < limit) ++i;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    const uint32_t cp = utf8::next(s, i);
    if (!is_stable(form, cp)) return true;
  }
  return false;
}

utf8proc_option_t options(UnicodeForm form) {
  switch (form) {
    case UnicodeForm::kNFC: return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    case UnicodeForm::kNFD: return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
    case UnicodeForm::kNFKC:
      return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    case UnicodeForm::kNFKD:
      return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  }
  return UTF8PROC_STABLE;
}

void normalize_run(UnicodeForm form, std::string_view run, std::string& out) {
  if (run.empty()) return;
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
                                          static_cast<utf8proc_ssize_t>(run.size()), &result, options(form));
  DIST_ASSERT(n >= 0, "utf8proc_map failed: ", utf8proc_errmsg(n));
  out.append(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
  std::free(result);
}

}  // namespace unicode_normalization_detail

bool unicode_normalize(UnicodeForm form, std::string_view in, std::string& out) {
  namespace d = unicode_normalization_detail;
  if (!d::needs_work(form, in)) return false;
  out.clear();
  size_t run_start = 0, i = 0;
  while (i < in.size()) {
    const size_t at = i;
    const uint32_t cp = utf8::next(in, i);
    if (cp >= 0x300 && d::is_inert(form, cp)) {
      d::normalize_run(form, in.substr(run_start, at - run_start), out);
      out.append(in.substr(at, i - at));
      run_start = i;
    }
  }
  d::normalize_run(form, in.substr(run_start), out);
  return out != in;
}

}  // namespace distillery::text
