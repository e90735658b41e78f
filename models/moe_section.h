// The `moe:` section of a recipe: the router's auxiliary losses for mixture-of-experts models
// (docs/moe.md). Ignored for dense models.
#pragma once

#include "common/config_fields.h"
#include "models/model_config.h"

namespace distillery {

struct MoeSection {
  double aux_loss_coef = -1.0;
  double z_loss_coef = 0.0;
  double bias_update_rate = 0.0;

  template <class V>
  void visit(V& v) {
    using namespace config;
    v("aux_loss_coef", aux_loss_coef,
      "load-balancing loss coefficient (Switch / Mixtral aux loss, per sequence, token-weighted); negative: "
      "config.json's router_aux_loss_coef (mixtral, qwen2_moe, qwen3_moe), 0 for deepseek");
    v("z_loss_coef", z_loss_coef, "router z-loss coefficient: mean over tokens and MoE layers of logsumexp(logits)^2",
      ge(0));
    v("bias_update_rate", bias_update_rate,
      "DeepSeek-V3 auxiliary-loss-free balancing: after each step every gate.e_score_correction_bias moves this much "
      "towards balance (+ below the mean load, - above), from the step's token counts on all ranks; 0 keeps the "
      "checkpoint's bias (DeepSeek-V3 pre-training used 0.001); only for models with the bias (deepseek_v3)",
      ge(0));
  }

  // The coefficient in effect for `model`.
  double aux_coef_for(const TransformerConfig& model) const {
    return aux_loss_coef >= 0 ? aux_loss_coef : model.moe.router_aux_loss_coef.value_or(0.0);
  }
};

}  // namespace distillery
