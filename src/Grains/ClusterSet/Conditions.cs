using ControlPlane.Contracts.V1;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Grains.ClusterSet;

/// <summary>Kubernetes-style conditions: set one, keeping its transition time while its status stays.</summary>
public static class Conditions
{
    public const string True = "True";
    public const string False = "False";
    public const string Unknown = "Unknown";

    public static Condition? Find(RepeatedField<Condition> conditions, string type) => conditions.FirstOrDefault(c => c.Type == type);

    /// <summary>The conditions with <paramref name="wanted"/> set; its transition time is kept when its status did not change.</summary>
    public static void Set(RepeatedField<Condition> conditions, Condition wanted, DateTimeOffset now)
    {
        var existing = Find(conditions, wanted.Type);
        wanted.LastTransitionTime = existing is not null && existing.Status == wanted.Status
            ? existing.LastTransitionTime
            : Timestamp.FromDateTimeOffset(now);
        if (existing is not null)
        {
            conditions[conditions.IndexOf(existing)] = wanted;
        }
        else
        {
            conditions.Add(wanted);
        }
    }

    public static Condition Of(string type, string status, string reason, string message) =>
        new() { Type = type, Status = status, Reason = reason, Message = message };
}
