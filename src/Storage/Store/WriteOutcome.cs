namespace ControlPlane.Storage;

public enum WriteOutcome : byte
{
    Committed,
    /// <summary>The object's revision was not the expected one.</summary>
    Conflict,
    /// <summary>The writer's epoch no longer owns the partition.</summary>
    Fenced,
    /// <summary>Another object holds one of the write's claims.</summary>
    ClaimTaken,
    /// <summary>An object the write requires (<see cref="WriteRequest.Requires"/>) does not exist.</summary>
    Unreferenceable,
    /// <summary>A delete of an object that other objects still refer to.</summary>
    Referenced,
}
