#pragma once
// Prometheus text exposition (version 0.0.4) for GET /metrics.
#include <cstdint>
#include <string>
#include <string_view>

namespace nm {

class MetricsText {
  public:
    // One metric family: its HELP and TYPE lines, then samples added with sample().
    MetricsText& family(std::string_view name, std::string_view type, std::string_view help);
    // `labels` is the inside of the braces ("reason=\"unknown_service\""), or empty.
    MetricsText& sample(std::string_view name, double value, std::string_view labels = {});
    // A family with one unlabelled sample.
    MetricsText& single(std::string_view name, std::string_view type, std::string_view help,
                        double value);
    std::string& text() { return text_; }

  private:
    std::string text_;
};

}  // namespace nm
