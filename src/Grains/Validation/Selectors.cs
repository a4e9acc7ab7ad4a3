using ControlPlane.Contracts.Naming;
using ControlPlane.Contracts.V1;
using ControlPlane.Storage.Errors;
using Google.Protobuf.Collections;

namespace ControlPlane.Grains.Validation;

/// <summary>Label selectors: validation and matching, with Kubernetes' semantics.</summary>
public static class Selectors
{
    public static void Validate(string field, LabelSelector selector)
    {
        Names.RequireLabels(field + ".match_labels", selector.MatchLabels);
        for (var i = 0; i < selector.MatchExpressions.Count; i++)
        {
            var expression = selector.MatchExpressions[i];
            var at = $"{field}.match_expressions[{i}]";
            if (NameRules.LabelKey(expression.Key) is { } keyError) throw ControlPlaneException.Invalid(at + ".key", keyError);
            switch (expression.Operator)
            {
                case "In" or "NotIn":
                    if (expression.Values.Count == 0) throw ControlPlaneException.Invalid(at + ".values", $"must not be empty for operator {expression.Operator}");
                    foreach (var value in expression.Values)
                    {
                        if (NameRules.LabelValue(value) is { } valueError) throw ControlPlaneException.Invalid(at + ".values", valueError);
                    }
                    break;
                case "Exists" or "DoesNotExist":
                    if (expression.Values.Count != 0) throw ControlPlaneException.Invalid(at + ".values", $"must be empty for operator {expression.Operator}");
                    break;
                default:
                    throw ControlPlaneException.Invalid(at + ".operator", $"'{expression.Operator}' is not one of In, NotIn, Exists, DoesNotExist");
            }
        }
    }

    /// <summary>Equality-based selector of a service: an empty one selects nothing.</summary>
    public static bool MatchesServiceSelector(MapField<string, string> selector, IReadOnlyList<KeyValuePair<string, string>> labels)
    {
        if (selector.Count == 0) return false;
        foreach (var (key, value) in selector)
        {
            var found = false;
            for (var i = 0; i < labels.Count && !found; i++)
            {
                found = labels[i].Key == key && labels[i].Value == value;
            }
            if (!found) return false;
        }
        return true;
    }
}
