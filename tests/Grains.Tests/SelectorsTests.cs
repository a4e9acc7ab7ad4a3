using ControlPlane.Contracts.Policy;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Validation;
using ControlPlane.Storage.Errors;
using Google.Protobuf.Collections;

namespace ControlPlane.Grains.Tests;

public sealed class SelectorsTests
{
    private static MapField<string, string> Labels(params (string Key, string Value)[] pairs)
    {
        var map = new MapField<string, string>();
        foreach (var (key, value) in pairs) map[key] = value;
        return map;
    }

    private static LabelSelector Expression(string key, string op, params string[] values)
    {
        var requirement = new LabelSelectorRequirement { Key = key, Operator = op };
        requirement.Values.Add(values);
        return new LabelSelector { MatchExpressions = { requirement } };
    }

    [Fact]
    public void Matches_EmptySelector_MatchesEverything() =>
        Assert.True(LabelSelectors.Matches(new LabelSelector(), Labels()));

    [Theory]
    [InlineData("In", "web", true)]
    [InlineData("In", "db", false)]
    [InlineData("NotIn", "db", true)]
    [InlineData("NotIn", "web", false)]
    public void Matches_SetExpressions_FollowKubernetes(string op, string value, bool expected) =>
        Assert.Equal(expected, LabelSelectors.Matches(Expression("app", op, value), Labels(("app", "web"))));

    [Fact]
    public void Matches_NotInOnAbsentKey_Matches() =>
        Assert.True(LabelSelectors.Matches(Expression("app", "NotIn", "web"), Labels()));

    [Fact]
    public void Matches_ExistsAndDoesNotExist_LookAtTheKeyOnly()
    {
        Assert.True(LabelSelectors.Matches(Expression("app", "Exists"), Labels(("app", ""))));
        Assert.False(LabelSelectors.Matches(Expression("app", "DoesNotExist"), Labels(("app", "x"))));
    }

    [Fact]
    public void MatchesServiceSelector_Empty_SelectsNothing() =>
        Assert.False(Selectors.MatchesServiceSelector(Labels(), [KeyValuePair.Create("app", "web")]));

    [Fact]
    public void MatchesServiceSelector_NeedsEveryPair() =>
        Assert.Equal([true, false], new[] { ("web", "1"), ("web", "2") }.Select(l =>
            Selectors.MatchesServiceSelector(Labels(("app", "web"), ("v", "1")), [KeyValuePair.Create("app", l.Item1), KeyValuePair.Create("v", l.Item2), KeyValuePair.Create("x", "y")])));

    [Theory]
    [InlineData("Like", "x", "operator")]
    [InlineData("In", null, "values")]
    [InlineData("Exists", "x", "values")]
    public void Validate_BadExpression_NamesTheField(string op, string? value, string field)
    {
        var selector = value is null ? Expression("app", op) : Expression("app", op, value);
        var error = Assert.Throws<ControlPlaneException>(() => Selectors.Validate("spec.pod_selector", selector));
        Assert.Equal($"spec.pod_selector.match_expressions[0].{field}", error.Field);
    }
}
