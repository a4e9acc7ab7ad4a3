using System.Net;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Ipam;

/// <summary>
/// The shared address rules (<see cref="ControlPlane.Contracts.Addressing"/>, which netctl checks
/// with too) as the grains apply them: a refused value is INVALID_ARGUMENT naming its field.
/// </summary>
public static class AddressInput
{
    /// <summary>A plain dotted quad or IPv6 address (<see cref="HostAddresses.Parse"/>), in canonical form.</summary>
    public static IPAddress ParseHost(string field, string text) =>
        HostAddresses.Parse(text, out var problem) ?? throw ControlPlaneException.Invalid(field, problem!);

    /// <summary>A prefix as a user writes it (<see cref="IpPrefix.Parse"/>).</summary>
    public static IpPrefix ParsePrefix(string field, string text) =>
        IpPrefix.Parse(text, out var problem) ?? throw ControlPlaneException.Invalid(field, problem!);

    /// <summary>A prefix this control plane stored earlier (<see cref="IpPrefix.ParseStored"/>).</summary>
    public static IpPrefix ParseStoredPrefix(string field, string text) =>
        IpPrefix.ParseStored(text, out var problem) ?? throw ControlPlaneException.Invalid(field, problem!);

    /// <summary>A policy's ipBlock, host bits ignored (<see cref="IpPrefix.ParseMasked"/>).</summary>
    public static IpPrefix ParseMaskedPrefix(string field, string text) =>
        IpPrefix.ParseMasked(text, out var problem) ?? throw ControlPlaneException.Invalid(field, problem!);

    /// <summary>Throws a shared rule's problem, if any, as INVALID_ARGUMENT naming its field.</summary>
    public static void Require(FieldProblem? problem)
    {
        if (problem is { } refused) throw ControlPlaneException.Invalid(refused.Field, refused.Reason);
    }
}
