-- Allocations with the team and product line that pay for them, and how each cost is treated:
-- direct (a team's own workload), shared (a shared namespace), idle, or unmounted/unallocated.
-- The team comes from the first source in the configured precedence that names one.
-- Labels are unnested once and matched to the configured keys with joins (set work, not a
-- subquery per row): on a month of 500 machines this takes 0.2 s instead of 17 s.
with allocation as (

    select
        *,
        row_number() over () as allocation_row
    from {{ ref('stg_allocation') }}

),

rules as (

    select * from {{ source('config', 'rules') }}

),

label_keys as (

    select * from {{ source('config', 'team_label_keys') }}

),

labels as (

    select
        allocation_row,
        'pod_label' as source,
        unnest(labels) as label
    from allocation
    union all
    select
        allocation_row,
        'namespace_label' as source,
        unnest(namespace_labels) as label
    from allocation

),

label_teams as (

    select
        l.allocation_row,
        arg_min(l.label.value, k.position) filter (l.source = 'pod_label') as pod_label_team,
        arg_min(l.label.value, k.position) filter (
            l.source = 'namespace_label'
        ) as namespace_label_team
    from labels as l
    join label_keys as k
        on k.source = l.source and k.label_key = l.label.key
    where l.label.value <> ''
    group by l.allocation_row

),

product_lines as (

    select
        l.allocation_row,
        -- a pod has each label key once
        any_value(l.label.value) as product_line_label_value
    from labels as l
    where l.source = 'pod_label'
        and l.label.key = (select product_line_label from rules)
        and l.label.value <> ''
    group by l.allocation_row

),

precedence_order as (

    -- e.g. [pod_label, namespace_label, namespace_map]; the config allows each at most once
    select list(source order by position) as sources
    from {{ source('config', 'team_precedence') }}

),

candidates as (

    select
        a.* exclude (allocation_row),
        lt.pod_label_team,
        lt.namespace_label_team,
        m.team as namespace_map_team,
        pl.product_line_label_value

    from allocation as a
    left join label_teams as lt
        on lt.allocation_row = a.allocation_row
    left join product_lines as pl
        on pl.allocation_row = a.allocation_row
    left join {{ source('config', 'team_namespace_map') }} as m
        on m.namespace = a.namespace

),

precedence as (

    select
        c.*,
        coalesce(
            case o.sources[1]
                when 'pod_label' then c.pod_label_team
                when 'namespace_label' then c.namespace_label_team
                when 'namespace_map' then c.namespace_map_team
            end,
            case o.sources[2]
                when 'pod_label' then c.pod_label_team
                when 'namespace_label' then c.namespace_label_team
                when 'namespace_map' then c.namespace_map_team
            end,
            case o.sources[3]
                when 'pod_label' then c.pod_label_team
                when 'namespace_label' then c.namespace_label_team
                when 'namespace_map' then c.namespace_map_team
            end
        ) as resolved_team

    from candidates as c
    cross join precedence_order as o

),

final as (

    select
        p.* exclude (resolved_team),
        case
            when p.allocation_kind = 'idle' then 'idle'
            when p.allocation_kind in ('unmounted', 'unallocated') then 'unmounted'
            when p.namespace in (select namespace from {{ source('config', 'shared_namespaces') }})
                then 'shared'
            else 'direct'
        end as cost_type,
        coalesce(p.resolved_team, r.default_team) as team,
        coalesce(p.product_line_label_value, r.default_product_line) as product_line

    from precedence as p
    cross join rules as r

)

select * from final
