#pragma once
// Prometheus text exposition (version 0.0.4) for GET /metrics.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace nm {

class MetricsText {
  public:
    // One metric family: its HELP and TYPE lines, then samples added with sample().
    MetricsText& family(std::string_view name, std::string_view type, std::string_view help);
    // `labels` is the inside of the braces ("reason=\"unknown_service\""), or empty.
    MetricsText& sample(std::string_view name, double value, std::string_view labels = {});
    // Labelled samples of one family, in order.
    struct Labelled {
        std::string_view labels;
        double value;
    };
    MetricsText& samples(std::string_view name, std::initializer_list<Labelled> list);
    // A family with one unlabelled sample.
    MetricsText& single(std::string_view name, std::string_view type, std::string_view help,
                        double value);
    std::string& text() { return text_; }

  private:
    std::string text_;
};

}  // namespace nm
