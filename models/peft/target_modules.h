// Which modules of a model a `target_modules` / `modules_to_save` list selects, with PEFT's rules:
//   - a list of names: a module matches when its full name equals an entry or ends with "." + entry;
//   - one regular expression: it must match the whole full name (Python's re.fullmatch);
//   - all-linear: every linear projection except the output layer (lm_head).
// A YAML scalar and a one-element list read the same, so an entry is taken as a regex when it
// holds a regex metacharacter; a plain name is matched as a suffix, as in a PEFT list.
#pragma once

#include <string>
#include <vector>

namespace distillery::lora {

// True when `entry` holds a character that only makes sense in a regular expression.
bool is_regex_entry(const std::string& entry);

// Whether the module `full_name` is selected by one target entry (not all-linear).
bool entry_matches(const std::string& entry, const std::string& full_name);

// The full names among `linear_names` selected by `targets`; `output_layer` is excluded by all-linear.
// An entry that selects nothing -> UserError naming it and listing the model's linear modules.
// `key` names the recipe key (or adapter_config.json field) in the message.
std::vector<std::string> select_targets(const std::vector<std::string>& targets,
                                        const std::vector<std::string>& linear_names,
                                        const std::string& output_layer, const std::string& key);

// The short names (last path component) of `full_names`, distinct, in first-seen order.
std::vector<std::string> short_names(const std::vector<std::string>& full_names);

}  // namespace distillery::lora
