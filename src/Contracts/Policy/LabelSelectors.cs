using ControlPlane.Contracts.V1;

namespace ControlPlane.Contracts.Policy;

/// <summary>Label selectors with Kubernetes' semantics (validation lives with the resources that carry them).</summary>
public static class LabelSelectors
{
    /// <summary>True when the labels satisfy every term. An empty selector matches everything.</summary>
    public static bool Matches(LabelSelector selector, IReadOnlyDictionary<string, string> labels)
    {
        foreach (var (key, value) in selector.MatchLabels)
        {
            if (!labels.TryGetValue(key, out var actual) || actual != value) return false;
        }
        foreach (var expression in selector.MatchExpressions)
        {
            var present = labels.TryGetValue(expression.Key, out var actual);
            var ok = expression.Operator switch
            {
                "In" => present && expression.Values.Contains(actual!),
                "NotIn" => !present || !expression.Values.Contains(actual!),
                "Exists" => present,
                "DoesNotExist" => !present,
                _ => false,
            };
            if (!ok) return false;
        }
        return true;
    }
}
